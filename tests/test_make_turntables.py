"""tools/make_turntables.py end to end: layouts, workers, resuming, argument errors."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
import scipy.io

from chairgen import procedural

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "make_turntables.py"
AUBRY_RE = re.compile(r"^image_\d{3}_p0[23]0_t\d{3}_r096\.png$")


def _run(*args, check=True):
  result = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)
  if check and result.returncode != 0:
    raise AssertionError(result.stderr[-3000:])
  return result


@pytest.mark.slow
def test_two_workers_write_the_aubry_layout(tmp_path):
  _run("--family=chairs", "--num_models=3", "--image_size=16", "--layout=aubry",
       f"--out_dir={tmp_path}", "--seed=2", "--num_workers=2")
  root = tmp_path / "rendered_chairs"
  names = [procedural.object_name("chairs", i, 2) for i in range(3)]
  models = sorted(p for p in os.listdir(root) if not p.startswith("."))
  assert models == sorted(names + ["all_chair_names.mat"])
  for name in names:
    renders = os.listdir(root / name / "renders")
    assert len(renders) == 62 and all(AUBRY_RE.match(f) for f in renders)
  mat = scipy.io.loadmat(root / "all_chair_names.mat")
  assert [str(c[0]) for c in mat["folder_names"].ravel()] == names
  assert not (tmp_path / ".partial").exists()


def test_rerun_skips_complete_models_and_redoes_interrupted_ones(tmp_path):
  args = ["--family=tables", "--image_size=16", "--layout=r2n2", f"--out_dir={tmp_path}",
          "--num_workers=0"]
  _run(*args, "--num_models=2")
  synset = tmp_path / "04379243"
  done = [procedural.object_name("tables", i, 0) for i in range(2)]
  stamps = {n: os.stat(synset / n / "keypoints.json").st_mtime_ns for n in done}
  # An interrupted run of model 2: its files sit in .partial, never in the synset folder.
  third = procedural.object_name("tables", 2, 0)
  leftover = tmp_path / ".partial" / f"{third}.12345" / "rendering"
  leftover.mkdir(parents=True)
  (leftover / "00.png").write_bytes(b"truncated")
  assert not (synset / third).exists()

  _run(*args, "--num_models=3")
  assert {n: os.stat(synset / n / "keypoints.json").st_mtime_ns for n in done} == stamps
  assert len(os.listdir(synset / third / "rendering")) == 182
  assert not (tmp_path / ".partial").exists()


@pytest.mark.parametrize("args,message", [
    (["--family=cars", "--layout=aubry"], "chairs only"),
    (["--family=chairs", "--layout=aubry", "--extra_elevations"], "extra_elevations"),
    (["--family=chairs", "--layout=r2n2", "--num_models=0"], "num_models"),
    (["--family=chairs", "--layout=r2n2", "--image_size=4"], "image_size"),
    (["--family=sofas", "--layout=r2n2"], "family"),
    (["--family=chairs", "--layout=shapenet"], "layout"),
])
def test_bad_arguments_are_refused_clearly(tmp_path, args, message):
  defaults = {"--num_models": "1", "--out_dir": str(tmp_path / "out")}
  given = {a.split("=")[0] for a in args}
  extra = [f"{k}={v}" for k, v in defaults.items() if k not in given]
  result = _run(*args, *extra, check=False)
  assert result.returncode != 0
  assert message in result.stderr
  assert not (tmp_path / "out").exists()


def test_missing_out_dir_is_refused():
  result = _run("--family=chairs", "--layout=aubry", "--num_models=1", check=False)
  assert result.returncode != 0 and "out_dir" in result.stderr


def test_other_settings_in_the_same_tree_are_refused(tmp_path):
  args = ["--family=cars", "--num_models=1", "--layout=r2n2", f"--out_dir={tmp_path}",
          "--num_workers=0"]
  _run(*args, "--image_size=16")
  result = _run(*args, "--image_size=24", check=False)
  assert result.returncode != 0 and "image_size=16" in result.stderr
