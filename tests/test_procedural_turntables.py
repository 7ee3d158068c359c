"""Turntable writers: exact upstream names and counts, file contents, determinism, atomicity."""

import json
import os
import re

import numpy as np
import pytest
import scipy.io
from PIL import Image

from chairgen import procedural
from chairgen.procedural import camera, turntables

SIZE = 16
AUBRY_RE = re.compile(r"^renders/image_(\d{3})_p(\d{3})_t(\d{3})_r096\.png$")
R2N2_RE = re.compile(r"^rendering/(\d{2,3})\.png$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def renderer():
  return procedural.Renderer(SIZE)


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root)
                for d, _, fs in os.walk(root) for f in fs)


def test_aubry_view_names_follow_the_upstream_grid():
  views = turntables.aubry_views()
  assert len(views) == 62
  parsed = [AUBRY_RE.match(v.file).groups() for v in views]
  assert [int(k) for k, _, _ in parsed] == list(range(31)) + list(range(32, 63))
  assert [int(p) for _, p, _ in parsed] == [20] * 31 + [30] * 31
  azimuths = [int(i * 360 / 31) for i in range(31)]
  assert [int(t) for _, _, t in parsed] == azimuths * 2
  assert azimuths[:3] == [0, 11, 23] and azimuths[-1] == 348
  assert [(v.azimuth, v.elevation) for v in views] == [(int(t), int(p)) for _, p, t in parsed]


@pytest.mark.parametrize("extra,count", [(False, 180), (True, 360)])
def test_r2n2_view_names_follow_the_paper_grid(extra, count):
  views = turntables.r2n2_views(extra)
  assert len(views) == count
  assert [int(R2N2_RE.match(v.file).group(1)) for v in views] == list(range(count))
  assert views[0].file == "rendering/00.png" and views[1].file == "rendering/01.png"
  elevations = list(range(0, 50, 10)) + (list(range(50, 100, 10)) if extra else [])
  assert [(v.elevation, v.azimuth) for v in views] == [
      (e, a) for e in elevations for a in range(0, 360, 10)]


def test_aubry_model_folder(renderer, tmp_path):
  objs = [procedural.make_object("chairs", i) for i in range(2)]
  for obj in objs:
    assert turntables.write_model(renderer, obj, tmp_path, "aubry")
  mat_path = turntables.write_aubry_names(tmp_path, [o.name for o in objs])
  root = tmp_path / "rendered_chairs"
  assert sorted(os.listdir(root)) == sorted([o.name for o in objs] + ["all_chair_names.mat"])
  for obj in objs:
    files = _files(root / obj.name)
    renders = [f for f in files if f.startswith("renders/")]
    assert len(renders) == 62 and all(AUBRY_RE.match(f) for f in renders)
    assert files == sorted(renders + ["keypoints.json"])
    image = Image.open(root / obj.name / renders[0])
    assert image.mode == "RGB" and image.size == (SIZE, SIZE)
  mat = scipy.io.loadmat(mat_path)
  folders = [str(c[0]) for c in mat["folder_names"].ravel()]
  instances = [str(c[0]) for c in mat["instance_names"].ravel()]
  assert folders == [o.name for o in objs] and all(HEX32.match(f) for f in folders)
  assert instances == [os.path.basename(v.file) for v in turntables.aubry_views()]
  assert not os.listdir(tmp_path / ".partial")


def test_r2n2_model_folder(renderer, tmp_path):
  obj = procedural.make_object("cars", 4)
  turntables.write_model(renderer, obj, tmp_path, "r2n2", extra_elevations=True)
  folder = tmp_path / "02958343" / obj.name
  rendering = folder / "rendering"
  pngs = sorted(f for f in os.listdir(rendering) if f.endswith(".png"))
  assert len(pngs) == 360
  assert (rendering / "renderings.txt").read_text().splitlines() == [
      os.path.basename(v.file) for v in turntables.r2n2_views(True)]
  lines = (rendering / "rendering_metadata.txt").read_text().splitlines()
  assert len(lines) == 360
  for line, view in zip(lines, turntables.r2n2_views(True)):
    az, el, rot, dist, fov = map(float, line.split())
    assert (az, el, rot) == (view.azimuth, view.elevation, 0.0)
    assert (dist, fov) == (camera.CAMERA_DISTANCE, camera.FIELD_OF_VIEW_DEG)
  rgba = np.asarray(Image.open(rendering / "75.png"))
  assert rgba.shape == (SIZE, SIZE, 4)
  assert set(np.unique(rgba[..., 3])) <= {0, 255}
  np.testing.assert_array_equal(rgba[..., 3] == 255, (rgba[..., :3] != 255).any(-1))


def test_tables_and_chairs_use_their_synsets(renderer, tmp_path):
  for family, synset in (("tables", "04379243"), ("chairs", "03001627")):
    obj = procedural.make_object(family, 0)
    turntables.write_model(renderer, obj, tmp_path, "r2n2")
    assert len(os.listdir(tmp_path / synset / obj.name / "rendering")) == 182


def test_keypoints_file_matches_the_camera(renderer, tmp_path):
  obj = procedural.make_object("chairs", 9)
  turntables.write_model(renderer, obj, tmp_path, "aubry")
  record = json.loads((tmp_path / "rendered_chairs" / obj.name / "keypoints.json").read_text())
  assert record["name"] == obj.name and record["family"] == "chairs"
  assert record["names"] == obj.keypoint_names and record["image_size"] == SIZE
  assert record["factors"] == json.loads(json.dumps(obj.factors))
  assert len(record["views"]) == 62
  for view, spec in zip(record["views"], turntables.aubry_views()):
    assert view["file"] == spec.file
    xy, _ = camera.project(np.array(record["points_3d"]), view["azimuth"], view["elevation"], SIZE)
    np.testing.assert_allclose(view["xy"], xy, atol=1e-3)
    assert len(view["visible"]) == len(record["names"])


def test_same_seed_gives_byte_identical_files(renderer, tmp_path):
  for out in ("a", "b"):
    for i in range(2):
      turntables.write_model(renderer, procedural.make_object("tables", i, seed=5),
                             tmp_path / out, "r2n2")
  files = _files(tmp_path / "a")
  assert files == _files(tmp_path / "b") and len(files) == 2 * 183
  for f in files:
    assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_different_indices_give_different_images(renderer, tmp_path):
  names = []
  for i in range(3):
    obj = procedural.make_object("chairs", i)
    turntables.write_model(renderer, obj, tmp_path, "aubry")
    names.append(obj.name)
  first = "renders/image_003_p020_t034_r096.png"
  images = [(tmp_path / "rendered_chairs" / n / first).read_bytes() for n in names]
  assert len(set(images)) == 3


class _FailingRenderer:
  """Renders nothing: raises the way a crash or Ctrl-C would, mid-model."""

  image_size = SIZE

  def render_views(self, obj, angles):
    raise KeyboardInterrupt


def test_interrupted_model_leaves_no_folder(renderer, tmp_path):
  obj = procedural.make_object("chairs", 1)
  with pytest.raises(KeyboardInterrupt):
    turntables.write_model(_FailingRenderer(), obj, tmp_path, "aubry")
  assert not (tmp_path / "rendered_chairs" / obj.name).exists()
  assert not os.listdir(tmp_path / ".partial")
  assert turntables.write_model(renderer, obj, tmp_path, "aubry")
  assert not turntables.write_model(renderer, obj, tmp_path, "aubry")  # Already complete.


def test_layout_errors():
  with pytest.raises(ValueError, match="chairs only"):
    turntables.model_dir("/tmp/x", "aubry", "cars", "0" * 32)
  with pytest.raises(ValueError, match="layout"):
    turntables.views_for("shapenet")
  with pytest.raises(ValueError, match="62 views"):
    turntables.views_for("aubry", extra_elevations=True)
