"""The wheel a pip user gets: the library only, and it builds and reads a dataset on its own."""

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    import tensorflow_datasets as tfds
    import chairgen, chairgen.datasets  # nothing from the checkout: it is not on sys.path
    from chairgen.models.cpu_kernels import onednn
    builder = tfds.builder("procedural_turntables/test", data_dir=sys.argv[1])
    builder.download_and_prepare()
    source = tfds.data_source("procedural_turntables/test", split="train", data_dir=sys.argv[1])
    example = source[len(source) - 1]
    print("RESULT " + json.dumps({
        "chairgen": chairgen.__file__, "n": len(source), "shape": list(example["image"].shape),
        "experiments_installed": importlib.util.find_spec("experiments") is not None,
        "onednn_unavailable": onednn.unavailable_reason(),
        "tensorflow_imported": "tensorflow" in sys.modules}))
""")


@pytest.mark.slow
def test_wheel_holds_the_library_and_works_outside_the_checkout(tmp_path):
  # Built from a copy: setuptools builds in the source tree, and a stale build/ there could
  # put deleted modules into the wheel.
  source = tmp_path / "source"
  shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
      ".git", ".venv*", "workdirs", "build", "dist", "*.egg-info", "__pycache__"))
  wheels = tmp_path / "wheels"
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source],
                 check=True, capture_output=True, timeout=600)
  (wheel,) = wheels.glob("chairgen-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  top_level = {n.split("/")[0] for n in names if not n.startswith("chairgen-")}
  assert top_level == {"chairgen"}, top_level  # no `experiments` (nor tests, tools)
  for needed in ("chairgen/datasets/aubry_chairs/checksums.tsv",
                 "chairgen/datasets/aubry_chairs/TAGS.txt",
                 "chairgen/datasets/procedural_turntables/README.md",
                 "chairgen/procedural/render_process.py",
                 "chairgen/models/cpu_kernels/onednn.cc"):
    assert needed in names, needed
  assert not [n for n in names if "/dummy_data/" in n]
  metadata = zipfile.ZipFile(wheel).read(
      next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
  assert "Requires-Python: >=3.11" in metadata
  assert "Provides-Extra: render" in metadata and "chex" not in metadata

  venv = tmp_path / "venv"
  subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
  python = os.fspath(venv / "bin" / "python")
  proc = subprocess.run(
      [python, "-m", "pip", "install", "-q", "--no-compile", "-c",
       os.path.join(REPO, "tools", "constraints.txt"), f"{wheel}[render]"], capture_output=True, text=True, timeout=1200, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (tmp_path / "user").mkdir()
  (tmp_path / "user" / "script.py").write_text(USER_SCRIPT)
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
  proc = subprocess.run([python, "script.py", os.fspath(tmp_path / "data")],
                        cwd=tmp_path / "user", env=env, capture_output=True, text=True,
                        timeout=900, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
  result = json.loads(line[len("RESULT "):])
  assert result["chairgen"].startswith(os.fspath(venv)), result["chairgen"]
  assert result["n"] == 240 and result["shape"] == [32, 32, 3]
  assert result["experiments_installed"] is False
  assert result["tensorflow_imported"] is False
  if sys.platform == "linux" and platform.machine() == "x86_64":
    # The oneDNN wheel the dependency brings is found in the new environment and the kernels
    # build against it there.
    assert result["onednn_unavailable"] is None, result["onednn_unavailable"]
