"""procedural_turntables: rendered in the build; plus the procedural writers read by the other
two builders (the same builders read the project's renders and the upstream data)."""

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import chairgen.datasets  # noqa: F401  (registers the builders)
from chairgen import procedural
from chairgen.datasets import common
from chairgen.datasets.procedural_turntables import procedural_turntables_dataset_builder as pt

SMALL = pt.ProceduralConfig(name="two_chairs_two_tables", image_size=32, num_models=2,
                            families=("chairs", "tables"), azimuth_stride=12,
                            extra_elevations=True)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("procedural")
  builder = pt.Builder(config=SMALL, data_dir=data_dir)
  builder.download_and_prepare()
  return builder.as_data_source(split="train")


def test_grid_of_the_small_config():
  views = SMALL.views()
  assert views == [(float(a), float(e)) for e in range(0, 100, 10) for a in (0, 120, 240)]


def test_reads_back_models_views_masks_and_keypoints(small):
  views = SMALL.views()
  assert len(small) == 4 * len(views)
  renderer = procedural.Renderer(image_size=32)
  try:
    for model_index, (family, index) in enumerate(
        [("chairs", 0), ("chairs", 1), ("tables", 0), ("tables", 1)]):
      obj = procedural.make_object(family, index, seed=0)
      rendered = pt.render_views(renderer, obj, views)
      for view_index, (azimuth, elevation) in enumerate(views):
        ex = small[model_index * len(views) + view_index]
        assert ex["model_index"] == model_index and ex["view_index"] == view_index
        assert ex["model_name"].decode() == obj.name
        assert common.CLASS_NAMES[ex["class"]] == common.FAMILY_TO_CLASS[family]
        assert (ex["azimuth"], ex["elevation"]) == (azimuth, elevation)
        view = rendered[view_index]
        np.testing.assert_array_equal(ex["image"], view.rgb)
        np.testing.assert_array_equal(ex["mask"][..., 0], view.mask.astype(np.uint8))
        # The renderer's mask is exactly the non-white pixels.
        np.testing.assert_array_equal(ex["mask"][..., 0] == 1, ex["image"].min(-1) < 255)
        assert ex["keypoints"].shape == (len(obj.keypoints), 2)
        np.testing.assert_array_equal(ex["keypoints"], view.keypoints_px)
        np.testing.assert_array_equal(ex["keypoints_visible"], view.keypoints_visible)
  finally:
    renderer.release()


def test_named_test_config_builds_and_reads_by_name(tmp_path):
  source = tfds.data_source("procedural_turntables/test", split="train", data_dir=tmp_path)
  assert len(source) == 4 * 60
  ex = source[len(source) - 1]
  assert ex["image"].shape == (32, 32, 3) and ex["model_index"] == 3 and ex["view_index"] == 59


def test_named_configs():
  configs = {c.name: c for c in pt.Builder.BUILDER_CONFIGS}
  tiny = configs["tiny"]
  assert (tiny.families, tiny.num_models, tiny.image_size, len(tiny.views())) == (
      ("chairs",), 16, 64, 180)
  assert len(configs["chairs_tables_64"].views()) == 360
  assert {configs[f"cars_{s}"].image_size for s in (64, 128, 256)} == {64, 128, 256}
  assert pt.Builder.DEFAULT_BUILDER_CONFIG_NAME == "tiny"
  # Every config is documented: the README writes sized families as `chairs_{64,128,256}`.
  readme = (Path(pt.__file__).parent / "README.md").read_text()
  docs = (Path(__file__).parents[1] / "docs" / "datasets.md").read_text()
  for name in configs:
    family, _, size = name.rpartition("_")
    in_readme = f"`{name}`" in readme or (size.isdigit() and f"`{family}_{{" in readme)
    assert in_readme and f"`{name}`" in docs, name


@pytest.mark.parametrize("kwargs, match", [
    (dict(families=("sofas",)), "families"),
    (dict(families=()), "families"),
    (dict(grid="polar"), "grid"),
    (dict(grid="aubry", extra_elevations=True), "extra_elevations"),
    (dict(num_models=0), "num_models"),
])
def test_bad_configs_are_refused(kwargs, match):
  with pytest.raises(ValueError, match=match):
    pt.ProceduralConfig(name="bad", **kwargs)


def test_interrupted_build_never_loads_as_complete(tmp_path, monkeypatch):
  calls = []
  original = pt.render_views

  def failing(renderer, obj, angles):
    calls.append(obj.name)
    if len(calls) == 2:
      raise RuntimeError("renderer crashed")
    return original(renderer, obj, angles)

  monkeypatch.setattr(pt, "render_views", failing)
  builder = tfds.builder("procedural_turntables/test", data_dir=tmp_path)
  with pytest.raises(RuntimeError, match="renderer crashed"):
    builder.download_and_prepare()
  assert len(calls) == 2  # the first model was generated before the failure
  assert not tfds.builder("procedural_turntables/test", data_dir=tmp_path).is_prepared()
  with pytest.raises(common.DatasetNotPreparedError):
    tfds.data_source("procedural_turntables/test", data_dir=tmp_path, download=False)


# -- the procedural writers, read by aubry_chairs and shapenet_turntables -----------------------


def test_writer_layouts_build_with_the_upstream_builders(tmp_path):
  renderer = procedural.Renderer(image_size=64)
  try:
    chairs = [procedural.make_object("chairs", i, seed=0) for i in range(2)]
    for obj in chairs:
      procedural.write_model(renderer, obj, tmp_path / "aubry", "aubry")
    procedural.write_aubry_names(tmp_path / "aubry", [o.name for o in chairs])
    table = procedural.make_object("tables", 0, seed=0)
    procedural.write_model(renderer, table, tmp_path / "r2n2", "r2n2")
    table_views = renderer.render_views(table, [(10.0, 40.0)]) if hasattr(
        renderer, "render_views") else [renderer.render(table, 10.0, 40.0)]
  finally:
    renderer.release()

  aubry = tfds.builder("aubry_chairs/64", data_dir=tmp_path / "data")
  aubry.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(tmp_path / "aubry")))
  source = aubry.as_data_source(split="train")
  assert len(source) == 2 * 62
  names = sorted(o.name for o in chairs)
  ex = source[62 + 31 + 4]  # second model, elevation 30, azimuth index 4
  assert ex["model_name"].decode() == names[1]
  assert (ex["azimuth"], ex["elevation"], ex["view_index"]) == (46.0, 30.0, 35)
  assert 0 < ex["mask"].mean() < 1

  shapenet = tfds.builder("shapenet_turntables/tables_64", data_dir=tmp_path / "data")
  shapenet.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(tmp_path / "r2n2")))
  source = shapenet.as_data_source(split="train")
  assert len(source) == 180
  ex = source[4 * 36 + 1]  # elevation-major: elevation 40, azimuth 10
  assert (ex["azimuth"], ex["elevation"], ex["model_name"].decode()) == (10.0, 40.0, table.name)
  # 64 px renders read at 64 px: RGBA composited on white gives back the render exactly.
  np.testing.assert_array_equal(ex["image"], table_views[0].rgb)
  np.testing.assert_array_equal(ex["mask"][..., 0], table_views[0].mask)
