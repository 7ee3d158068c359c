"""Session fixtures: one TFDS data_dir and one tiny trained run (and a tiny VAE) for all tests."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

# One persistent XLA compilation cache for the session and the entry points it runs in
# subprocesses (they inherit the variable): the sections' runs of one shape compile once
# instead of once per run (the test-scale experiments take half the time). Set before jax is
# imported; a fresh directory per session, removed at exit.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="chairgen-tests-xla-cache-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

from chairgen import train  # pylint: disable=wrong-import-position
from experiments.configs import default as default_configs  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory):
  """A TFDS data_dir shared by the whole session (the first user builds the test dataset)."""
  return str(tmp_path_factory.mktemp("session_tfds"))


def _train(root, data_dir, **model):
  config = default_configs.get_config("test")
  config.data.data_dir = data_dir
  config.optimizer.num_steps = 2
  config.train.eval_every = config.train.checkpoint_every = 1
  config.augment.enabled = False
  for key, value in model.items():
    config.model[key] = value
  if model.get("vae"):
    config.loss.mask_loss = "vae"
  workdir = str(root / "run")
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, session_data_dir):
  """Workdir of a 2-step run of the test preset (checkpoints at steps 1 and 2)."""
  return _train(tmp_path_factory.mktemp("trained_run"), session_data_dir)


@pytest.fixture(scope="session")
def trained_vae_run(tmp_path_factory, session_data_dir):
  """Workdir of a 2-step VAE run of the test preset."""
  return _train(tmp_path_factory.mktemp("trained_vae_run"), session_data_dir, vae=True)


def _run_section(name, runs_dir, out_dir, data_dir, *extra, variant=""):
  """`python -m experiments.<name>` at the test scale (optionally a variant, e.g. 'real')."""
  arg = f"test,{variant}" if variant else "test"
  return subprocess.run(
      [sys.executable, "-m", f"experiments.{name}",
       f"--config=experiments/configs/{name}.py:{arg}", f"--runs_dir={runs_dir}",
       f"--out_dir={out_dir}", f"--data_dir={data_dir}", *extra],
      cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def run_section():
  """The function that runs one paper section's entry point in a subprocess."""
  return _run_section
