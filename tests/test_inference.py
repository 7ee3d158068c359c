"""Inference from a trained run: parameters only, fresh VAE samples, replacements, the run's data."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from chairgen import augment
from chairgen import inference
from chairgen import input_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def trained(trained_run):
  return inference.load(trained_run)


@pytest.fixture(scope="module")
def vae(trained_vae_run):
  return inference.load(trained_vae_run)


def test_vae_prior_samples_differ_between_keys_and_between_chunks(vae):
  n = 130  # three chunks of 64
  style = vae.one_hot(np.zeros(n, int))
  draw = lambda key: vae.generate(style, np.full(n, 30.0), np.full(n, 20.0), vae_z="prior",
                                  rng=key, batch_size=64).rgb
  a, b, again = draw(jax.random.key(1)), draw(jax.random.key(2)), draw(jax.random.key(1))
  np.testing.assert_array_equal(a, again)           # a key reproduces its samples
  assert not np.allclose(a, b)                       # another key gives others
  assert not np.allclose(a[0], a[64])                # same input, another chunk: another z
  assert not np.allclose(a[0], a[1])                 # same input, same chunk: another z
  mean = vae.generate(style[:2], [30.0, 30.0], [20.0, 20.0]).rgb  # posterior mean: no key
  np.testing.assert_allclose(mean[0], mean[1], atol=1e-6)
  with pytest.raises(ValueError, match="pass rng"):
    vae.generate(style[:2], [0.0, 0.0], [0.0, 0.0], vae_z="prior")


def test_per_example_replacement_of_200_rows_equals_a_loop_over_rows(trained):
  n = 200
  rng = np.random.default_rng(0)
  width = trained.layer_shapes()["fc4"][0]
  replacement = rng.uniform(0, 1, (n, width)).astype(np.float32)
  styles = trained.one_hot(rng.integers(0, trained.num_styles, n))
  az, el = rng.uniform(0, 360, n), rng.uniform(0, 40, n)
  together = trained.generate(styles, az, el, replace={"fc4": replacement}, batch_size=64)
  again = trained.generate(styles, az, el, replace={"fc4": replacement[::-1].copy()},
                           batch_size=64)
  # One compilation serves both calls: the arrays are traced arguments, not constants.
  assert len([k for k in trained._compiled if k[0] == ("fc4",)]) == 1
  assert not np.allclose(again.rgb, together.rgb)  # the per-example rows reach the output
  for i in range(0, n, 23):
    single = trained.generate(styles[i:i + 1], az[i:i + 1], el[i:i + 1],
                              replace={"fc4": replacement[i:i + 1]})
    np.testing.assert_allclose(together.rgb[i], single.rgb[0], atol=1e-5)
  # A replacement without a batch axis is shared by every image.
  shared = trained.generate(styles[:3], az[:3], el[:3], replace={"fc4": replacement[0]})
  np.testing.assert_allclose(shared.rgb, np.repeat(shared.rgb[:1], 3, axis=0), atol=1e-6)
  with pytest.raises(ValueError, match="rows"):
    trained.generate(styles[:3], az[:3], el[:3], replace={"fc4": replacement[:2]})


def test_capture_returns_activations_of_every_chunk(trained):
  n = 70
  out = trained.generate(trained.one_hot(np.arange(n) % trained.num_styles), np.zeros(n),
                         np.full(n, 20.0), capture=("fc4", "fc5"), batch_size=32)
  shapes = trained.layer_shapes()
  assert out.activations["fc4"].shape == (n,) + shapes["fc4"]
  assert out.activations["fc5"].shape == (n,) + shapes["fc5"]
  with pytest.raises(ValueError, match="unknown layer"):
    trained.generate(trained.one_hot([0]), [0.0], [0.0], capture=("fc9",))


def test_loading_restores_parameters_only_and_never_imports_train(trained_run):
  code = ("import sys; from chairgen import inference; t = inference.load(sys.argv[1]); "
          "print(sorted(t.params)[:3], 'chairgen.train' in sys.modules, "
          "'optax' in sys.modules, hasattr(t, 'opt_state'))")
  result = subprocess.run([sys.executable, "-c", code, trained_run], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().endswith("False False False"), result.stdout


def test_loaded_parameters_equal_the_trained_ones(trained_run, trained):
  info = inference.read_run_info(trained_run)
  assert set(trained.params) <= set(trained.model.layer_names())  # layers, no Adam moments
  assert trained.step == 2 and info["num_styles"] == trained.num_styles
  earlier = inference.load(trained_run, step=1)
  assert earlier.step == 1
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(earlier.params), jax.tree.leaves(trained.params)))


def test_split_read_back_equals_the_one_trained_on(trained_run, trained):
  pipeline = input_pipeline.create_pipeline(trained.config.data, seed=trained.config.seed)
  split = trained.data.split
  np.testing.assert_array_equal(split.train, pipeline.split.train)
  np.testing.assert_array_equal(split.test, pipeline.split.test)
  info = inference.read_run_info(trained_run)
  assert info["num_train"] == len(split.train) and info["num_test"] == len(split.test)
  assert info["split_fingerprint"] == inference.split_fingerprint(pipeline.split)


def test_ground_truth_by_style_and_view(trained):
  data = trained.data
  ids = data.split.test[:3]
  batch = data.examples(ids)
  image, mask = data.ground_truth(batch["style"], batch["azimuth"], batch["elevation"])
  np.testing.assert_allclose(image, batch["image"] / 255.0, atol=1e-6)
  np.testing.assert_array_equal(mask, batch["mask"])
  with pytest.raises(KeyError, match="no ground-truth view"):
    data.ground_truth([0], [1.5], [20.0])


def test_changed_data_is_detected(trained_run, tmp_path):
  copy = str(tmp_path / "run")
  shutil.copytree(trained_run, copy)
  path = os.path.join(copy, inference.RUN_INFO)
  with open(path) as f:
    info = json.load(f)
  info["split_fingerprint"] = "0" * 16
  with open(path, "w") as f:
    json.dump(info, f)
  with pytest.raises(ValueError, match="no longer gives the split"):
    inference.load(copy).data  # pylint: disable=expression-not-assigned


def test_bad_workdirs_and_steps_name_the_problem(trained_run, tmp_path):
  with pytest.raises(FileNotFoundError, match="not a chairgen training workdir"):
    inference.load(str(tmp_path))
  with pytest.raises(ValueError, match=r"no checkpoint at step 7; it has steps \[1, 2\]"):
    inference.load(trained_run, step=7)
  half = tmp_path / "half"
  half.mkdir()
  shutil.copy(os.path.join(trained_run, inference.RUN_INFO), half)
  with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
    inference.load(str(half))
  (half / inference.RUN_INFO).write_text("{not json")
  with pytest.raises(ValueError, match="corrupt"):
    inference.load(str(half))


def test_generate_checks_shapes(trained):
  with pytest.raises(ValueError, match="style must have shape"):
    trained.generate(np.ones((2, trained.num_styles + 1)), [0, 0], [0, 0])
  with pytest.raises(ValueError, match="theta must have shape"):
    trained.generate(trained.one_hot([0, 1]), [0, 0], [0, 0], np.zeros((2, 3)))
  with pytest.raises(ValueError, match="needs a VAE"):
    trained.generate(trained.one_hot([0]), [0.0], [0.0], vae_z="prior",
                     rng=jax.random.key(0))
  theta = augment.single_transform_theta("brightness", 2.0, 1)
  bright = trained.generate(trained.one_hot([0]), [0.0], [20.0], np.asarray(theta))
  plain = trained.generate(trained.one_hot([0]), [0.0], [20.0])
  assert not np.allclose(bright.rgb, plain.rgb)  # θ reaches the network
