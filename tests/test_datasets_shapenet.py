"""shapenet_turntables: built from a tree in the exact 3D-R2N2 layout that the test draws.

Renders are 128x128 RGBA: an opaque rectangle (2x2-aligned, so the 64 px configs halve it
exactly), one 2x2 block at alpha 128, and random colours under alpha 0 that compositing on
white must remove.
"""

import os

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

import chairgen.datasets  # noqa: F401  (registers the builders)
from chairgen.datasets import common
from chairgen.datasets.shapenet_turntables import shapenet_turntables_dataset_builder as sn

SRC = 128
# (azimuth, elevation, in-plane, distance, fov) per view, as in rendering_metadata.txt
META = [(0.0, 0.0, 0.0, 1.5, 25.0), (90.0, 10.0, 0.0, 1.5, 25.0),
        (180.0, 20.0, 0.0, 1.5, 25.0), (270.0, 30.5, 0.0, 1.5, 25.0)]
MODELS = {  # family -> [(model id, colour)]
    "chairs": [("1" * 32, (200, 20, 20)), ("2" * 32, (20, 200, 20))],
    "tables": [("3" * 32, (20, 20, 200))],
}


def rect(model_idx, view_idx):
  top, left = 10 + 8 * view_idx, 20 + 10 * model_idx
  return top, left, top + 40 + 4 * model_idx, left + 60


def draw(model_idx, view_idx, colour, rng):
  rgba = np.zeros((SRC, SRC, 4), np.uint8)
  rgba[..., :3] = rng.integers(0, 256, (SRC, SRC, 3))  # hidden under alpha 0
  t, l, b, r = rect(model_idx, view_idx)
  rgba[t:b, l:r, :3] = colour
  rgba[t:b, l:r, 3] = 255
  rgba[100:102, 100:102, :3] = colour
  rgba[100:102, 100:102, 3] = 128
  return rgba


def write_tree(root, models=MODELS):
  rng = np.random.default_rng(0)
  for family, entries in models.items():
    for m, (name, colour) in enumerate(entries):
      rendering = root / sn.SYNSETS[family] / name / "rendering"
      rendering.mkdir(parents=True)
      names = [f"{v:02d}.png" for v in range(len(META))]
      for v, file in enumerate(names):
        PIL.Image.fromarray(draw(m, v, colour, rng), "RGBA").save(rendering / file)
      (rendering / "renderings.txt").write_text("\n".join(names) + "\n")
      (rendering / "rendering_metadata.txt").write_text(
          "\n".join(" ".join(str(x) for x in line) for line in META) + "\n")
  return root


def expected(model_idx, view_idx, colour):
  mask = np.zeros((64, 64), bool)
  t, l, b, r = (x // 2 for x in rect(model_idx, view_idx))
  mask[t:b, l:r] = True
  mask[50, 50] = True  # alpha 128/255 >= 0.5
  image = np.full((64, 64, 3), 255, np.uint8)
  image[t:b, l:r] = colour
  a = 128 / 255
  image[50, 50] = np.round(np.asarray(colour) * a + 255 * (1 - a))
  return image, mask


def build(tmp_path, manual, config="chairs_tables_64"):
  builder = tfds.builder(f"shapenet_turntables/{config}", data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual)))
  return builder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("shapenet")
  write_tree(tmp / "manual" / "ShapeNetRendering")  # the folder itself inside manual_dir
  build(tmp, tmp / "manual")
  return tmp


def test_reads_back_classes_indices_angles_and_masks(built):
  source = tfds.data_source("shapenet_turntables/chairs_tables_64", split="train",
                            data_dir=built / "data")
  order = [("chairs", m, e) for m, e in enumerate(MODELS["chairs"])] + [
      ("tables", m, e) for m, e in enumerate(MODELS["tables"])]
  assert len(source) == len(order) * len(META)
  for i in range(len(source)):
    ex = source[i]
    model_index, view_index = divmod(i, len(META))
    family, m, (name, colour) = order[model_index]
    assert ex["model_index"] == model_index and ex["view_index"] == view_index
    assert ex["model_name"].decode() == name
    assert ex["class"] == common.CLASS_NAMES.index(common.FAMILY_TO_CLASS[family])
    assert ex["azimuth"] == np.float32(META[view_index][0])
    assert ex["elevation"] == np.float32(META[view_index][1])
    assert ex["keypoints"].shape == (0, 2)
    image, mask = expected(m, view_index, colour)
    np.testing.assert_array_equal(ex["mask"][..., 0], mask.astype(np.uint8))
    np.testing.assert_array_equal(ex["image"], image)


def test_single_class_config_and_custom_crop(built, tmp_path):
  chairs = build(tmp_path, built / "manual", "chairs_64").as_data_source(split="train")
  assert len(chairs) == 2 * len(META) and {chairs[i]["class"] for i in range(8)} == {0}
  config = sn.ShapeNetConfig(name="crop_test", image_size=64, families=("tables",),
                             crop_per_model=True, border_fraction=0.0)
  builder = sn.Builder(config=config, data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=built / "manual"))
  source = builder.as_data_source(split="train")
  # The union of the table's views is taller (rows 10..102) than wide (columns 20..102), so
  # with no border it fills the crop vertically and sits centred horizontally, in every view
  # together (one box per model), not per view.
  masks = np.stack([source[i]["mask"][..., 0] for i in range(len(source))])
  rows, cols = np.flatnonzero(masks.any(axis=(0, 2))), np.flatnonzero(masks.any(axis=(0, 1)))
  assert (rows[0], rows[-1]) == (0, 63)
  assert cols[0] > 0 and abs(cols[0] - (63 - cols[-1])) <= 1
  per_view_tops = [np.flatnonzero(m.any(axis=1))[0] for m in masks]
  assert per_view_tops[0] == 0 and per_view_tops == sorted(per_view_tops)  # rect moves down


# -- bad input -------------------------------------------------------------------------------


def build_error(tmp_path, manual, match, config="chairs_tables_64"):
  with pytest.raises(common.DatasetInputError, match=match) as e:
    build(tmp_path, manual, config)
  assert "Fix:" in str(e.value)
  return str(e.value)


@pytest.fixture
def tree(tmp_path):
  return write_tree(tmp_path / "manual")


def rendering(tree, family="tables", m=0):
  return tree / sn.SYNSETS[family] / MODELS[family][m][0] / "rendering"


def test_truncated_png(tmp_path, tree):
  bad = rendering(tree) / "02.png"
  bad.write_bytes(bad.read_bytes()[:100])
  assert str(bad) in build_error(tmp_path, tree, "corrupt or truncated")


def test_rgb_without_alpha(tmp_path, tree):
  bad = rendering(tree) / "01.png"
  PIL.Image.fromarray(np.zeros((SRC, SRC, 3), np.uint8)).save(bad)
  assert str(bad) in build_error(tmp_path, tree, "no alpha channel")


@pytest.mark.parametrize("damage, match", [
    ("no_metadata", "missing file"),
    ("short_metadata", "has 3 lines but renderings.txt lists 4"),
    ("bad_line", "line 2 is"),
    ("unlisted_png", "not listed in renderings.txt"),
    ("odd_name", "unexpected file name"),
    ("missing_png", "listed in renderings.txt but missing"),
    ("no_rendering", "missing rendering/ folder"),
])
def test_layout_errors_name_the_file(tmp_path, tree, damage, match):
  r = rendering(tree)
  meta = r / "rendering_metadata.txt"
  if damage == "no_metadata":
    os.remove(meta)
  elif damage == "short_metadata":
    meta.write_text("\n".join(meta.read_text().splitlines()[:3]))
  elif damage == "bad_line":
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join([lines[0], "90 10 0 1.5"] + lines[2:]))
  elif damage == "unlisted_png":
    (r / "04.png").write_bytes((r / "00.png").read_bytes())
  elif damage == "odd_name":
    os.rename(r / "03.png", r / "view3.png")
    (r / "renderings.txt").write_text("00.png\n01.png\n02.png\nview3.png\n")
  elif damage == "missing_png":
    os.remove(r / "03.png")
  elif damage == "no_rendering":
    os.rename(r, r.parent / "renders")
  build_error(tmp_path, tree, match)


def test_missing_synset_empty_and_missing_manual_dir(tmp_path):
  write_tree(tmp_path / "chairs_only", {"chairs": MODELS["chairs"]})
  assert "04379243" in build_error(tmp_path, tmp_path / "chairs_only", "no tables")
  (tmp_path / "empty").mkdir()
  build_error(tmp_path, tmp_path / "empty", "manual_dir is empty")
  build_error(tmp_path, tmp_path / "nowhere", "manual_dir does not exist")


def test_interrupted_build_never_loads_as_complete(tmp_path, tree):
  bad = rendering(tree) / "03.png"  # the last model: the chairs are written before it fails
  bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
  build_error(tmp_path, tree, "corrupt or truncated")
  assert not tfds.builder("shapenet_turntables/chairs_tables_64",
                          data_dir=tmp_path / "data").is_prepared()
  with pytest.raises(common.DatasetNotPreparedError):
    tfds.data_source("shapenet_turntables/chairs_tables_64", split="train",
                     data_dir=tmp_path / "data", download=False)
