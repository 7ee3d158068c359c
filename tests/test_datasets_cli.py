"""End to end in fresh processes: a third-party script, the build command, a killed build.

Each subprocess starts outside the repository, so it sees chairgen only as an installed package
would be seen (PYTHONPATH stands in for `pip install` when the package is not installed).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

import chairgen.datasets  # noqa: F401  (registers the builders)
from chairgen.datasets import common

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZIMUTHS = [int(i * 360 / 31) for i in range(31)]


def write_aubry(root):
  renders = root / "rendered_chairs" / ("ab" * 16) / "renders"
  renders.mkdir(parents=True)
  for e_idx, e in enumerate((20, 30)):
    for a_idx, a in enumerate(AZIMUTHS):
      img = np.full((80, 80, 3), 255, np.uint8)
      img[20:60, 10 + a_idx:30 + a_idx] = (120, 60, 30)
      PIL.Image.fromarray(img).save(
          renders / f"image_{a_idx + 32 * e_idx:03d}_p{e:03d}_t{a:03d}_r096.png")
  return root


def write_r2n2(root):
  rendering = root / "03001627" / ("cd" * 16) / "rendering"
  rendering.mkdir(parents=True)
  for v in range(2):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[10:40, 10 + v:30 + v] = (0, 0, 200, 255)
    PIL.Image.fromarray(rgba, "RGBA").save(rendering / f"{v:02d}.png")
  (rendering / "renderings.txt").write_text("00.png\n01.png\n")
  (rendering / "rendering_metadata.txt").write_text("0 20 0 1.5 25\n10 20 0 1.5 25\n")
  return root


def run_python(args, cwd, timeout=240):
  env = dict(os.environ)
  env.pop("TFDS_DATA_DIR", None)
  spec = importlib.util.find_spec("chairgen")
  installed = spec is not None and not spec.origin.startswith(REPO)
  if not installed:  # Stands in for `pip install` of the project.
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout)


THIRD_PARTY = textwrap.dedent("""
    import json, sys
    import tensorflow_datasets as tfds
    import chairgen.datasets  # the only chairgen import: registers the builders

    data_dir, aubry_dir, r2n2_dir = sys.argv[1:4]
    out = {}
    for name, manual in [("aubry_chairs/64", aubry_dir), ("shapenet_turntables/chairs_64", r2n2_dir),
                         ("procedural_turntables/test", None)]:
      builder = tfds.builder(name, data_dir=data_dir)
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=manual))
      source = tfds.data_source(name, split="train", data_dir=data_dir)
      ex = source[len(source) - 1]
      out[name] = [len(source), list(ex["image"].shape), float(ex["azimuth"])]
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    print("RESULT " + json.dumps(out))
""")


def test_third_party_script_builds_and_reads_every_builder(tmp_path):
  (tmp_path / "script.py").write_text(THIRD_PARTY)
  write_aubry(tmp_path / "aubry")
  write_r2n2(tmp_path / "r2n2")
  proc = run_python(["script.py", str(tmp_path / "data"), str(tmp_path / "aubry"),
                     str(tmp_path / "r2n2")], cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
  result = json.loads(line[len("RESULT "):])
  assert result == {
      "aubry_chairs/64": [62, [64, 64, 3], 348.0],
      "shapenet_turntables/chairs_64": [2, [64, 64, 3], 10.0],
      "procedural_turntables/test": [240, [32, 32, 3], 330.0],
      "tensorflow_imported": False,
  }


def test_build_command_accepts_tfds_build_arguments(tmp_path):
  write_aubry(tmp_path / "aubry")
  write_r2n2(tmp_path / "r2n2")
  data = tmp_path / "data"
  commands = [  # a builder folder (as `tfds build <folder>`), a name, a name with --imports
      [os.path.join(REPO, "chairgen", "datasets", "aubry_chairs"), "--config=64",
       f"--manual_dir={tmp_path / 'aubry'}"],
      ["shapenet_turntables", "--config=chairs_64", f"--manual_dir={tmp_path / 'r2n2'}"],
      ["procedural_turntables/test", "--imports=chairgen.datasets"],
  ]
  for args in commands:
    proc = run_python(["-m", "chairgen.datasets.build", *args, f"--data_dir={data}"],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
  for name, count in [("aubry_chairs/64", 62), ("shapenet_turntables/chairs_64", 2),
                      ("procedural_turntables/test", 240)]:
    assert len(tfds.data_source(name, split="train", data_dir=data, download=False)) == count
  # A bad manual_dir fails with the builder's message.
  proc = run_python(["-m", "chairgen.datasets.build", "aubry_chairs", "--config=64",
                     f"--manual_dir={tmp_path / 'r2n2'}", f"--data_dir={tmp_path / 'd2'}"],
                    cwd=tmp_path)
  assert proc.returncode != 0 and "neither rendered_chairs.tar" in proc.stderr


KILLED = textwrap.dedent("""
    import os, sys
    import tensorflow_datasets as tfds
    import chairgen.datasets
    from chairgen.datasets.procedural_turntables import procedural_turntables_dataset_builder as pt

    calls = []
    original = pt.render_views
    def render_then_die(renderer, obj, angles):
      calls.append(obj.name)
      if len(calls) == 3:
        os._exit(9)  # the process dies mid-generation: no cleanup, no exception handlers
      return original(renderer, obj, angles)
    pt.render_views = render_then_die
    tfds.builder("procedural_turntables/test", data_dir=sys.argv[1]).download_and_prepare()
""")


def test_killed_build_leaves_nothing_that_loads_and_rebuilds(tmp_path):
  (tmp_path / "killed.py").write_text(KILLED)
  data = tmp_path / "data"
  proc = run_python(["killed.py", str(data)], cwd=tmp_path)
  assert proc.returncode == 9
  leftovers = os.listdir(data / "procedural_turntables" / "test")
  assert leftovers and all("incomplete" in p for p in leftovers)
  assert not tfds.builder("procedural_turntables/test", data_dir=data).is_prepared()
  with pytest.raises(common.DatasetNotPreparedError, match="interrupted"):
    tfds.data_source("procedural_turntables/test", split="train", data_dir=data,
                     download=False)
  source = tfds.data_source("procedural_turntables/test", split="train", data_dir=data)
  assert len(source) == 240
