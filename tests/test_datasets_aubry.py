"""aubry_chairs: built from a tree in the exact upstream layout that the test draws.

Every model is a coloured rectangle on a 200x200 white render whose height depends on the
elevation and whose column shifts with the azimuth. The union of a model's boxes is 116 rows
high and 80 columns wide at a per-model position, so its square crop (border round(0.05 *
116) = 6) is 128 px and the `64` config halves it exactly: masks and colours are predictable
pixel for pixel, and the same crop box must serve all 62 views.
"""

import functools
import http.server
import os
import shutil
import sys
import tarfile
import threading

import numpy as np
import PIL.Image
import pytest
import scipy.io
import tensorflow_datasets as tfds

import chairgen.datasets  # noqa: F401  (registers the builders)
from chairgen.datasets import common
from chairgen.datasets.aubry_chairs import aubry_chairs_dataset_builder as aubry

AZIMUTHS = [int(i * 360 / 31) for i in range(31)]
ELEVATIONS = (20, 30)
SIZE = 200
HEIGHT = {20: 116, 30: 100}


def shift(a_idx):
  return 2 * (a_idx % 21)  # 0..40: union width = 40 + 40 = 80


# name, top, left, width, colour
MODELS = [
    ("0" * 31 + "a", 30, 50, 40, (200, 30, 10)),
    ("0" * 31 + "b", 2, 120, 40, (20, 90, 160)),   # box reaches above the render: padding
    ("0" * 31 + "c", 60, 10, 40, (90, 90, 90)),
]


def render(top, left, width, colour, e, a_idx):
  img = np.full((SIZE, SIZE, 3), 255, np.uint8)
  c0 = left + shift(a_idx)
  img[top:top + HEIGHT[e], c0:c0 + width] = colour
  return img


def write_tree(root, models=MODELS, names_mat=True):
  """Writes root/rendered_chairs/<id>/renders/image_KKK_pPPP_tTTT_r096.png (+ .mat)."""
  base = root / "rendered_chairs"
  for name, top, left, width, colour in models:
    renders = base / name / "renders"
    renders.mkdir(parents=True)
    for e_idx, e in enumerate(ELEVATIONS):
      for a_idx, a in enumerate(AZIMUTHS):
        path = renders / f"image_{a_idx + 32 * e_idx:03d}_p{e:03d}_t{a:03d}_r096.png"
        PIL.Image.fromarray(render(top, left, width, colour, e, a_idx)).save(path)
  if names_mat:
    cell = np.empty((1, len(models)), dtype=object)
    cell[0, :] = [m[0] for m in models]
    scipy.io.savemat(base / "all_chair_names.mat", {"folder_names": cell})
  return base


def expected_view(model, e, a_idx, out=64):
  """(image, mask) the `64` config must produce; the crop origin is (top - 6, left - 24)."""
  _, top, left, width, colour = model
  r0 = 6 // 2
  c0 = (24 + shift(a_idx)) // 2
  mask = np.zeros((out, out), bool)
  mask[r0:r0 + HEIGHT[e] // 2, c0:c0 + width // 2] = True
  image = np.full((out, out, 3), 255, np.uint8)
  image[mask] = colour
  return image, mask


def build(tmp_path, manual_dir, config="64", data_dir=None):
  data_dir = data_dir or tmp_path / "data"
  builder = tfds.builder(f"aubry_chairs/{config}", data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  return builder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("aubry")
  write_tree(tmp / "manual")
  build(tmp, tmp / "manual")
  return tmp


def test_reads_back_counts_shapes_angles_masks_and_crops(built):
  source = tfds.data_source("aubry_chairs/64", split="train", data_dir=built / "data")
  assert len(source) == len(MODELS) * 62
  assert "tensorflow" not in sys.modules
  for i in range(len(source)):
    ex = source[i]
    m, v = divmod(i, 62)
    e_idx, a_idx = divmod(v, 31)
    assert ex["model_index"] == m and ex["view_index"] == v
    assert ex["model_name"].decode() == MODELS[m][0]
    assert ex["class"] == 0
    assert ex["azimuth"] == AZIMUTHS[a_idx] and ex["elevation"] == ELEVATIONS[e_idx]
    assert ex["image"].shape == (64, 64, 3) and ex["image"].dtype == np.uint8
    assert ex["mask"].shape == (64, 64, 1) and ex["mask"].dtype == np.uint8
    assert ex["keypoints"].shape == (0, 2) and ex["keypoints_visible"].shape == (0,)
    # One crop box per model: every view lands exactly where the shared box puts it.
    image, mask = expected_view(MODELS[m], ELEVATIONS[e_idx], a_idx)
    np.testing.assert_array_equal(ex["mask"][..., 0], mask.astype(np.uint8))
    np.testing.assert_array_equal(ex["image"], image)


def test_builds_from_the_tar_in_manual_dir_and_from_the_folder_itself(built, tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  with tarfile.open(manual / "rendered_chairs.tar", "w") as tar:
    tar.add(built / "manual" / "rendered_chairs", arcname="rendered_chairs")
  from_tar = build(tmp_path, manual)
  from_folder = build(tmp_path, built / "manual" / "rendered_chairs",
                      data_dir=tmp_path / "data2")
  reference = tfds.data_source("aubry_chairs/64", split="train", data_dir=built / "data")
  for b in (from_tar, from_folder):
    source = b.as_data_source(split="train")
    assert len(source) == len(reference)
    for i in (0, 77, len(source) - 1):
      np.testing.assert_array_equal(source[i]["image"], reference[i]["image"])


def test_downloads_when_no_manual_dir_is_given(built, tmp_path, monkeypatch):
  serve = tmp_path / "www"
  serve.mkdir()
  with tarfile.open(serve / "rendered_chairs.tar", "w") as tar:
    tar.add(built / "manual" / "rendered_chairs", arcname="rendered_chairs")
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.fspath(serve))
  handler.log_message = lambda *a, **k: None
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(aubry.Builder, "URL",
                        f"http://127.0.0.1:{server.server_port}/rendered_chairs.tar")
    builder = tfds.builder("aubry_chairs/64", data_dir=tmp_path / "data")
    builder.download_and_prepare()
  finally:
    server.shutdown()
  assert len(builder.as_data_source(split="train")) == len(MODELS) * 62


# -- near-duplicate filtering ----------------------------------------------------------------


DEDUP_MODELS = [
    ("0" * 31 + "1", 30, 50, 40, (200, 30, 10)),
    ("0" * 31 + "2", 30, 50, 40, (10, 30, 200)),    # colour-only variant of 1
    ("0" * 31 + "3", 30, 20, 100, (90, 90, 90)),    # different shape
    ("0" * 31 + "4", 30, 20, 102, (90, 150, 90)),   # near-duplicate of 3
]


def test_dedup_drops_colour_variants_and_near_duplicates(tmp_path):
  write_tree(tmp_path / "manual", DEDUP_MODELS)
  config = aubry.AubryConfig(name="dedup_test", image_size=64, dedup_threshold=0.01)
  builder = aubry.Builder(config=config, data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual"))
  source = builder.as_data_source(split="train")
  names = [DEDUP_MODELS[i][0] for i in (0, 2)]
  assert len(source) == 2 * 62
  assert [source[i]["model_name"].decode() for i in (0, 62)] == names
  assert [source[i]["model_index"] for i in (0, 62, 123)] == [0, 1, 1]
  kept = (builder.data_path / "kept_models.txt").read_text().splitlines()
  assert [line for line in kept if not line.startswith("#")] == names
  removed = (builder.data_path / "removed_models.tsv").read_text().splitlines()
  rows = [r.split("\t") for r in removed[1:]]
  assert [(r[0], r[1]) for r in rows] == [(DEDUP_MODELS[1][0], names[0]),
                                          (DEDUP_MODELS[3][0], names[1])]
  assert float(rows[0][2]) == 0.0 and 0.0 < float(rows[1][2]) <= 0.01


def test_dedup_target_count_picks_the_threshold():
  rng = np.random.default_rng(0)
  desc = rng.random((50, 16)).astype(np.float32)
  desc[10:20] = desc[:10] + 0.001  # 10 near-duplicates
  dist = aubry.pairwise_distances(desc)
  assert np.allclose(np.diag(dist), 0) and np.allclose(dist, dist.T)
  kept, threshold = aubry.select_models(dist, None, 40)
  assert len(kept) == 40 and set(range(10, 20)).isdisjoint(kept)
  assert aubry.greedy_keep(dist, threshold) == kept
  kept, _ = aubry.select_models(dist, None, 25)
  assert abs(len(kept) - 25) <= 1
  assert aubry.select_models(dist, 0.0, None)[0] == list(range(50))


def test_paper_configs_target_809_models():
  configs = {c.name: c for c in aubry.Builder.BUILDER_CONFIGS}
  assert {c.image_size for c in configs.values()} == {64, 128, 256}
  assert configs["128_dedup"].dedup_target_count == 809
  assert configs["128"].dedup_target_count is None and configs["128"].dedup_threshold is None


# -- bad input ---------------------------------------------------------------------------------


def build_error(tmp_path, manual, match):
  with pytest.raises(common.DatasetInputError, match=match) as e:
    build(tmp_path, manual)
  assert "Fix:" in str(e.value)
  return str(e.value)


@pytest.fixture
def tree(tmp_path):
  return write_tree(tmp_path / "manual", MODELS[:2])


def one_render(tree):
  return sorted((tree / MODELS[1][0] / "renders").iterdir())[40]


def test_truncated_png_is_named(tmp_path, tree):
  bad = one_render(tree)
  bad.write_bytes(bad.read_bytes()[:300])
  assert str(bad) in build_error(tmp_path, tree.parent, "corrupt or truncated PNG")


def test_corrupt_png_is_named(tmp_path, tree):
  bad = one_render(tree)
  bad.write_bytes(b"garbage" * 20)
  assert str(bad) in build_error(tmp_path, tree.parent, "not a PNG")


def test_missing_renders_folder_is_named(tmp_path, tree):
  shutil.rmtree(tree / MODELS[1][0] / "renders")
  assert str(tree / MODELS[1][0] / "renders") in build_error(
      tmp_path, tree.parent, "missing renders/ folder")


def test_unexpected_file_name_is_named(tmp_path, tree):
  odd = tree / MODELS[0][0] / "renders" / "image_000_p020_t000.png"
  odd.write_bytes(b"")
  assert str(odd) in build_error(tmp_path, tree.parent, "unexpected file name")


def test_unexpected_folder_is_named(tmp_path, tree):
  (tree / "not_a_model").mkdir()
  assert "not_a_model" in build_error(tmp_path, tree.parent, "unexpected folder")


def test_missing_view_is_named(tmp_path, tree):
  os.remove(one_render(tree))
  msg = build_error(tmp_path, tree.parent, "1 of 62 views missing")
  assert MODELS[1][0] in msg


def test_model_listed_in_the_mat_file_but_missing(tmp_path, tree):
  shutil.rmtree(tree / MODELS[1][0])
  assert MODELS[1][0] in build_error(tmp_path, tree.parent, "listed in all_chair_names.mat")


def test_empty_missing_or_wrong_manual_dir(tmp_path):
  (tmp_path / "empty").mkdir()
  build_error(tmp_path, tmp_path / "empty", "manual_dir is empty")
  build_error(tmp_path, tmp_path / "nowhere", "manual_dir does not exist")
  (tmp_path / "wrong").mkdir()
  (tmp_path / "wrong" / "ShapeNetRendering").mkdir()
  msg = build_error(tmp_path, tmp_path / "wrong", "neither rendered_chairs.tar")
  assert "ShapeNetRendering" in msg


def test_archive_with_path_traversal_is_refused(tmp_path, tree):
  manual = tmp_path / "tar_manual"
  manual.mkdir()
  with tarfile.open(manual / "rendered_chairs.tar", "w") as tar:
    tar.add(tree, arcname="rendered_chairs")
    tar.add(one_render(tree), arcname="rendered_chairs/../../escape.png")
  build_error(tmp_path, manual, "contains '..'")
  assert not (tmp_path / "escape.png").exists()


def test_interrupted_build_never_loads_as_complete(tmp_path, tree):
  bad = sorted((tree / MODELS[1][0] / "renders").iterdir())[-1]  # fails after model 0 was written
  bad.write_bytes(bad.read_bytes()[:200])
  build_error(tmp_path, tree.parent, "truncated")
  builder = tfds.builder("aubry_chairs/64", data_dir=tmp_path / "data")
  assert not builder.is_prepared()
  with pytest.raises(common.DatasetNotPreparedError, match="not prepared"):
    tfds.data_source("aubry_chairs/64", data_dir=tmp_path / "data", download=False)
  with pytest.raises(common.DatasetNotPreparedError):
    tfds.data_source("aubry_chairs/64", split="train", data_dir=tmp_path / "data",
                     download=False)
  # After the fix, the same data_dir builds and reads normally.
  write_tree(tmp_path / "fixed", MODELS[:2])
  build(tmp_path, tmp_path / "fixed")
  source = tfds.data_source("aubry_chairs/64", split="train", data_dir=tmp_path / "data",
                            download=False)
  assert len(source) == 2 * 62
