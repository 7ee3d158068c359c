"""The builders as a TensorFlow user meets them: `tfds.load`, tf.data, both file formats.

Runs in the TensorFlow environment (`bash tools/setup.sh --tensorflow`, then
`.venv-tf/bin/python -m pytest -q chairgen/datasets tests/test_datasets_tensorflow.py`; CI
does both); skipped where TensorFlow is not installed. Inputs are the builders' committed
`dummy_data/` trees (tools/make_dummy_data.py), in the exact upstream layouts.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="needs TensorFlow; run in .venv-tf "
                         "(bash tools/setup.sh --tensorflow)")

import tensorflow_datasets as tfds  # noqa: E402

import chairgen.datasets  # noqa: E402,F401  (registers the builders)

DATASETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "chairgen", "datasets")
# name, manual dir, examples
CASES = [
    ("aubry_chairs/64", os.path.join(DATASETS, "aubry_chairs", "dummy_data"), 2 * 62),
    ("shapenet_turntables/chairs_tables_64",
     os.path.join(DATASETS, "shapenet_turntables", "dummy_data"), 2 * 24),
    ("procedural_turntables/test", None, 4 * 60),
]
FEATURES = ("image", "mask", "model_index", "model_name", "class", "azimuth", "elevation",
            "view_index", "keypoints", "keypoints_visible")


def load(name, manual_dir, data_dir, file_format=None, **kwargs):
  return tfds.load(
      name, split=kwargs.pop("split", "train"), data_dir=data_dir,
      builder_kwargs={"file_format": file_format} if file_format else None,
      download_and_prepare_kwargs={
          "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)},
      **kwargs)


def assert_same_examples(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert sorted(x) == sorted(FEATURES) == sorted(y)
    for key in FEATURES:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """{name: (array_record data_dir, tfrecord data_dir)}, each built through `tfds.load`."""
  root = tmp_path_factory.mktemp("tf")
  out = {}
  for name, manual, _ in CASES:
    dirs = (root / "array_record", root / "tfrecord")
    load(name, manual, dirs[0])
    load(name, manual, dirs[1], file_format="tfrecord")
    out[name] = dirs
  return out


@pytest.mark.parametrize("name,manual,count", CASES)
def test_tfds_load_works_out_of_the_box_and_both_formats_give_the_same_examples(
    built, name, manual, count):
  array_record_dir, tfrecord_dir = built[name]
  ds = load(name, manual, array_record_dir)  # no arguments: chairgen's default format
  assert isinstance(ds, tf.data.Dataset)
  assert ds.cardinality().numpy() == count
  from_array_record = list(tfds.as_numpy(ds))
  from_tfrecord = list(tfds.as_numpy(load(name, manual, tfrecord_dir, file_format="tfrecord")))
  assert len(from_array_record) == count
  assert_same_examples(from_array_record, from_tfrecord)
  # ... and the TF-free random-access source reads the same examples.
  source = tfds.data_source(name, split="train", data_dir=array_record_dir)
  assert_same_examples([source[i] for i in range(len(source))], from_array_record)
  assert from_array_record[-1]["image"].dtype == np.uint8
  assert [ex["view_index"] for ex in from_array_record[:3]] == [0, 1, 2]


def test_batches_slices_decoders_and_supervised_keys_behave_as_with_tfrecords(built):
  name, manual, _ = CASES[0]
  array_record_dir, tfrecord_dir = built[name]
  for kwargs in ({"split": "train[10:20]", "batch_size": 4},
                 {"decoders": {"image": tfds.decode.SkipDecoding()}},
                 {"decoders": tfds.decode.PartialDecoding({"image": True, "azimuth": True})}):
    a = list(tfds.as_numpy(load(name, manual, array_record_dir, **dict(kwargs))))
    b = list(tfds.as_numpy(load(name, manual, tfrecord_dir, file_format="tfrecord",
                                **dict(kwargs))))
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
      assert sorted(x) == sorted(y)
      for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=f"{kwargs}: {key}")
  skipped = next(iter(tfds.as_numpy(load(name, manual, array_record_dir, decoders={
      "image": tfds.decode.SkipDecoding()}))))
  assert skipped["image"].startswith(b"\x89PNG")


def test_shuffle_files_meets_the_same_ordering_guard_as_tfrecords(built):
  name, manual, count = CASES[0]
  array_record_dir, _ = built[name]
  with pytest.raises(ValueError, match="ordered dataset"):
    load(name, manual, array_record_dir, shuffle_files=True)
  ds = load(name, manual, array_record_dir, shuffle_files=True,
            read_config=tfds.ReadConfig(enable_ordering_guard=False, shuffle_seed=3))
  order = [int(ex["model_index"]) * 62 + int(ex["view_index"]) for ex in tfds.as_numpy(ds)]
  assert sorted(order) == list(range(count)) and order != sorted(order)


def test_add_tfds_id_names_the_fix(built):
  name, manual, _ = CASES[0]
  with pytest.raises(NotImplementedError, match="file_format='tfrecord'"):
    load(name, manual, built[name][0], read_config=tfds.ReadConfig(add_tfds_id=True))


def test_missing_manual_dir_keeps_chairgen_error_under_tensorflow(tmp_path):
  with pytest.raises(chairgen.datasets.DatasetInputError, match="manual_dir does not exist"):
    load("shapenet_turntables/chairs_64", os.fspath(tmp_path / "nowhere"), tmp_path / "d")
  (tmp_path / "empty").mkdir()
  with pytest.raises(chairgen.datasets.DatasetInputError, match="manual_dir is empty"):
    load("aubry_chairs/64", os.fspath(tmp_path / "empty"), tmp_path / "d")


TF_FREE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow_datasets as tfds
    import chairgen.datasets, chairgen.input_pipeline, chairgen.train  # the runtime
    from chairgen import procedural
    from chairgen.datasets.procedural_turntables import procedural_turntables_dataset_builder as b
    source = tfds.data_source("procedural_turntables/test", split="train", data_dir=sys.argv[1])
    config = next(c for c in b.Builder.BUILDER_CONFIGS if c.name == "test")
    renderer = procedural.Renderer(config.image_size)  # in this process: no TensorFlow here
    views = renderer.render_views(procedural.make_object("chairs", 3, config.seed), config.views())
    np.save(sys.argv[2], np.stack([v.rgb for v in views]))
    print("RESULT " + json.dumps({"n": len(source),
                                  "tensorflow_imported": "tensorflow" in sys.modules}))
""")


def test_runtime_stays_tensorflow_free_with_tensorflow_installed_and_renders_the_same(
    built, tmp_path):
  """Out-of-process renders (used beside TensorFlow) equal in-process ones, pixel for pixel."""
  proc = subprocess.run([sys.executable, "-c", TF_FREE, os.fspath(tmp_path / "data"),
                         os.fspath(tmp_path / "in_process.npy")],
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
  result = json.loads(line[len("RESULT "):])
  assert result == {"n": 240, "tensorflow_imported": False}
  under_tf = tfds.data_source("procedural_turntables/test", split="train",
                              data_dir=built["procedural_turntables/test"][0])
  in_process = np.load(tmp_path / "in_process.npy")
  assert in_process.shape == (60, 32, 32, 3) and in_process.std() > 10
  np.testing.assert_array_equal(np.stack([under_tf[i]["image"] for i in range(180, 240)]),
                                in_process)


FIRST_CALL = textwrap.dedent("""
    import sys
    import tensorflow_datasets as tfds
    import chairgen.datasets
    assert "tensorflow" not in sys.modules
    ds = tfds.load("procedural_turntables/test", split="train", data_dir=sys.argv[1])
    print("RESULT", sum(1 for _ in ds), "tensorflow" in sys.modules)
""")


def test_tfds_load_as_a_users_first_call_builds_and_reads(tmp_path):
  """Builds (draws) before TensorFlow is imported, then reads through tf.data: no segfault."""
  proc = subprocess.run([sys.executable, "-c", FIRST_CALL, os.fspath(tmp_path / "data")],
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "RESULT 240 True" in proc.stdout
