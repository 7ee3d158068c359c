"""End-to-end training: the loss falls, resuming is exact, NaNs stop cleanly, sharding agrees."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from chairgen import checkpoints
from chairgen import metric_writers
from chairgen import optimizer
from chairgen import inference
from chairgen import train
from experiments.configs import default as default_configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A data_dir shared by the tests of this module (the first run builds the tiny dataset)."""
  return str(tmp_path_factory.mktemp("tfds"))


def make_config(data_dir, **train_overrides):
  config = default_configs.get_config("test")
  config.data.data_dir = data_dir
  for key, value in train_overrides.items():
    section, name = key.split("__")
    config[section][name] = value
  return config


def final_params(workdir, config):
  trained = inference.load(workdir)
  return jax.device_get(trained.params)


def assert_trees_equal(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_loss_falls_and_run_writes_samples_metrics_and_events(tmp_path, data_dir):
  config = make_config(data_dir, optimizer__num_steps=40, train__log_every=5,
                       train__eval_every=40, train__checkpoint_every=20)
  config.augment.enabled = False
  config.optimizer.decay_start = 40
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  records = metric_writers.read_metrics(workdir)
  losses = [r["loss"] for r in records if "loss" in r]
  assert len(losses) == 8
  assert losses[-1] < 0.7 * losses[0], losses
  heldout = [r for r in records if "heldout_mse" in r]
  assert heldout and 0.0 < heldout[-1]["heldout_mse"] < 1.0
  assert os.path.exists(os.path.join(workdir, "samples", "step_0000040.png"))
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(os.path.join(workdir, "tensorboard")))
  with open(os.path.join(workdir, train.RUN_INFO)) as f:
    info = json.load(f)
  assert info["image_size"] == 32 and info["num_styles"] >= 2


class _Crash(Exception):
  pass


@pytest.mark.slow
def test_interrupted_and_resumed_runs_end_with_identical_parameters(tmp_path, data_dir):
  config = make_config(data_dir, optimizer__num_steps=6, train__checkpoint_every=2,
                       train__eval_every=6)
  uninterrupted = str(tmp_path / "straight")
  train.train_and_evaluate(config, uninterrupted)

  # A crash after step 5: the step-4 checkpoint survives and the rerun continues from it.
  crashed = str(tmp_path / "crashed")

  def crash_at_5(step, state):
    del state
    if step == 5:
      raise _Crash()

  with pytest.raises(_Crash):
    train.train_and_evaluate(config, crashed, hooks=[crash_at_5])
  assert checkpoints.create_manager(crashed).latest_step() == 4
  train.train_and_evaluate(config, crashed)

  # SIGTERM after step 3: a checkpoint at step 3 is saved and the run returns.
  preempted = str(tmp_path / "preempted")

  def sigterm_at_3(step, state):
    del state
    if step == 3:
      os.kill(os.getpid(), signal.SIGTERM)

  state = train.train_and_evaluate(config, preempted, hooks=[sigterm_at_3])
  assert int(state.step) == 3
  train.train_and_evaluate(config, preempted)

  reference = final_params(uninterrupted, config)
  assert_trees_equal(reference, final_params(crashed, config))
  assert_trees_equal(reference, final_params(preempted, config))


@pytest.mark.slow
def test_non_finite_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path, data_dir):
  config = make_config(data_dir, optimizer__num_steps=2, train__checkpoint_every=2,
                       train__eval_every=2)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  good = final_params(workdir, config)

  bad = make_config(data_dir, optimizer__num_steps=6, train__checkpoint_every=1,
                    train__eval_every=6)
  bad.optimizer.learning_rate = float("inf")
  with pytest.raises(train.NonFiniteLossError, match="last good checkpoint \\(step 2\\)"):
    train.train_and_evaluate(bad, workdir)
  assert checkpoints.create_manager(workdir).latest_step() == 2
  assert_trees_equal(good, final_params(workdir, config))


def test_config_errors_name_the_problem():
  with pytest.raises(ValueError, match="unknown config preset 'nope'"):
    default_configs.get_config("nope")
  config = default_configs.get_config("test")
  config.train.batch_size = 0
  with pytest.raises(ValueError, match="batch_size"):
    train.validate_config(config)
  config = default_configs.get_config("test")
  config.train.eval_every = 0
  with pytest.raises(ValueError, match="eval_every"):
    train.validate_config(config)


def test_learning_rate_schedule_matches_the_paper():
  config = default_configs.get_config("paper")
  schedule = optimizer.learning_rate_schedule(config.optimizer)
  assert float(schedule(0)) == pytest.approx(5e-4)
  assert float(schedule(249_999)) == pytest.approx(5e-4)
  assert float(schedule(250_001)) == pytest.approx(2.5e-4)
  assert float(schedule(350_001)) == pytest.approx(1.25e-4)
  assert float(schedule(450_001)) == pytest.approx(6.25e-5)
  assert config.optimizer.num_steps == 500_000 and config.train.batch_size == 128
  assert (config.optimizer.b1, config.optimizer.b2, config.optimizer.eps) == (0.9, 0.999, 1e-6)


def test_train_command_rejects_bad_flags():
  result = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--workdir=/tmp/x",
       "--config=experiments/configs/default.py:nope"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "unknown config preset 'nope'" in result.stderr
  result = subprocess.run([sys.executable, "-m", "experiments.train"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode != 0 and "--workdir" in result.stderr


SHARDING_SCRIPT = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, numpy as np
    from chairgen import augment, models, train, input_pipeline
    from experiments.configs import default
    assert jax.device_count() == 2, jax.devices()
    config = default.get_config("test")
    # The CPU kernels (reshapes that merge the sharded batch with tile axes, custom-VJP GEMM
    # kernel gradients): 'auto' on the CPU, said explicitly.
    config.model.kernels = "auto"
    num_styles, size, batch = 3, 32, 8
    rng = np.random.default_rng(0)
    az = rng.uniform(0, 360, batch).astype(np.float32)
    el = rng.uniform(0, 40, batch).astype(np.float32)
    data = {
        "image": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
        "mask": (rng.random((batch, size, size, 1)) > 0.5).astype(np.uint8),
        "style": rng.integers(0, num_styles, batch).astype(np.int32),
        "view": np.asarray(input_pipeline.view_encoding(az, el), np.float32),
    }
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      mesh = train.create_mesh(devices)
      model = models.create_model(config.model, num_styles=num_styles, image_size=size,
                                  theta_dim=augment.THETA_DIM)
      state = train.create_train_state(config, model, mesh, num_styles, size)
      step = train.make_train_step(config, model, mesh, num_styles)
      sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
      for _ in range(2):
        state, metrics = step(state, jax.device_put(data, sharding))
      results.append((jax.device_get(state.params), float(metrics["loss"])))
    (p1, l1), (p2, l2) = results
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print("SHARDED_EQUALS_SINGLE", l1, l2)
""")


@pytest.mark.slow
def test_sharded_step_on_two_host_devices_equals_one_device():
  env = dict(os.environ, PYTHONPATH=REPO)
  result = subprocess.run([sys.executable, "-c", SHARDING_SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "SHARDED_EQUALS_SINGLE" in result.stdout


@pytest.mark.parametrize("preset", default_configs.PRESETS)
def test_every_preset_gives_a_valid_model_and_loss_config(preset):
  from chairgen import augment, losses, models  # pylint: disable=g-import-not-at-top
  config = default_configs.get_config(preset)
  train.validate_config(config)
  augment.validate_config(config.augment)
  model = models.create_model(config.model, num_styles=3, image_size=64)
  style, view, theta = (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32),
                        np.asarray(augment.identity_theta(2)))
  variables = jax.eval_shape(
      lambda: model.init({"params": jax.random.key(0), "sample": jax.random.key(1)},
                         style, view, theta))
  outputs = jax.eval_shape(
      lambda v: model.apply(v, style, view, theta, rngs={"sample": jax.random.key(2)}),
      variables)
  loss, _ = jax.eval_shape(
      lambda o: losses.compute(o, np.zeros((2, 64, 64, 3), np.float32),
                               np.zeros((2, 64, 64, 1), np.float32), config.loss), outputs)
  assert loss.shape == ()


def _truncate_step(workdir, step):
  """Cuts every data file of one checkpoint step to half its size, as a bad copy would."""
  cut = 0
  for root, _, files in os.walk(os.path.join(workdir, checkpoints.CHECKPOINT_DIR, str(step))):
    if os.path.basename(root) == "d":  # OCDBT's data files
      for name in files:
        path = os.path.join(root, name)
        with open(path, "r+b") as f:
          f.truncate(os.path.getsize(path) // 2)
        cut += 1
  assert cut, "no OCDBT data files found to damage"


@pytest.mark.slow
def test_damaged_checkpoint_names_step_and_file_and_training_resumes_from_the_one_before(
    tmp_path, data_dir, capsys):
  config = make_config(data_dir, optimizer__num_steps=6, train__checkpoint_every=2,
                       train__eval_every=6)
  straight = str(tmp_path / "straight")
  train.train_and_evaluate(config, straight)

  damaged = str(tmp_path / "damaged")
  short = make_config(data_dir, optimizer__num_steps=4, train__checkpoint_every=2,
                      train__eval_every=6)
  train.train_and_evaluate(short, damaged)  # checkpoints at steps 2 and 4
  _truncate_step(damaged, 4)
  capsys.readouterr()

  with pytest.raises(checkpoints.DamagedCheckpointError, match=r"step 4 cannot be read") as e:
    inference.load(damaged, step=4)
  assert os.path.join(checkpoints.CHECKPOINT_DIR, "4") in str(e.value)
  loaded = inference.load(damaged)  # no step asked: the newest that reads, with a warning
  assert loaded.step == 2
  assert "skipped damaged checkpoint step(s)" in capsys.readouterr().out

  proc = subprocess.run([sys.executable, "-m", "experiments.sample", f"--workdir={damaged}",
                         f"--out_dir={tmp_path / 'figures'}"], cwd=REPO, capture_output=True,
                        text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "step 2 of" in proc.stdout and "using step 2" in proc.stdout
  assert "Event loop is closed" not in proc.stderr

  # Resuming skips the damaged step, keeps it aside, and ends where an undamaged run ends.
  train.train_and_evaluate(config, damaged)
  out = capsys.readouterr().out
  assert "Resuming from step 2" in out and "moved damaged checkpoint step(s) [4]" in out
  assert os.path.isdir(os.path.join(damaged, checkpoints.DAMAGED_DIR, "4"))
  assert inference.available_steps(damaged)[-1] == 6
  assert_trees_equal(final_params(straight, config), final_params(damaged, config))
