"""Losses of equation (1) and the VAE bound, with Caffe's normalisations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from chairgen import losses

B, S = 2, 4


def targets(seed=0):
  rng = np.random.default_rng(seed)
  mask = (rng.random((B, S, S, 1)) > 0.5).astype(np.float32)
  image = rng.random((B, S, S, 3)).astype(np.float32) * mask
  return jnp.asarray(image), jnp.asarray(mask)


def config(**overrides):
  c = losses.default_config()
  c.update(overrides)
  return c


def test_default_config():
  c = losses.default_config()
  assert c.mask_loss is None and c.mask_weight is None
  assert (c.rgb_sigma, c.kl_weight) == (0.1, 1.0)


def test_euclidean_is_half_sum_over_pixels_averaged_over_batch():
  pred = jnp.zeros((B, S, S, 3))
  target = jnp.ones((B, S, S, 3))
  assert float(losses.euclidean(pred, target)) == pytest.approx(0.5 * S * S * 3)


def test_softmax_nll_is_averaged_over_pixels_and_batch():
  mask = jnp.asarray(targets()[1])
  assert float(losses.softmax_nll(jnp.zeros((B, S, S, 2)), mask)) == pytest.approx(np.log(2))
  confident = jnp.concatenate([1 - mask, mask], axis=-1) * 40.0 - 20.0
  assert float(losses.softmax_nll(confident, mask)) < 1e-6


def test_soft_mask_targets_are_minimised_at_the_target_probability():
  s = jnp.full((1, 1, 1, 1), 0.3)
  best = jnp.log(jnp.array([0.7, 0.3])).reshape(1, 1, 1, 2)
  entropy = -(0.3 * np.log(0.3) + 0.7 * np.log(0.7))
  assert float(losses.softmax_nll(best, s)) == pytest.approx(entropy, rel=1e-5)
  grad = jax.grad(losses.softmax_nll)(best, s)
  np.testing.assert_allclose(grad, 0.0, atol=1e-6)
  logit = jnp.log(jnp.full((1, 1, 1, 1), 0.3 / 0.7))
  assert float(losses.bernoulli_nll(logit, s)) == pytest.approx(entropy, rel=1e-5)
  np.testing.assert_allclose(jax.grad(losses.bernoulli_nll)(logit, s), 0.0, atol=1e-6)


def test_gaussian_nll_matches_scipy():
  image, _ = targets()
  mean = image + 0.05
  want = -stats.norm.logpdf(np.asarray(image), np.asarray(mean), 0.2).reshape(B, -1).sum(1)
  assert float(losses.gaussian_nll(mean, image, 0.2)) == pytest.approx(want.mean(), rel=1e-5)


def test_bernoulli_nll_matches_scipy():
  _, mask = targets()
  logits = jnp.linspace(-3, 3, B * S * S).reshape(B, S, S, 1)
  p = np.asarray(jax.nn.sigmoid(logits))
  want = -stats.bernoulli.logpmf(np.asarray(mask), p).reshape(B, -1).sum(1)
  assert float(losses.bernoulli_nll(logits, mask)) == pytest.approx(want.mean(), rel=1e-5)


def test_kl_to_standard_normal():
  assert float(losses.kl_standard_normal(jnp.zeros((B, 8)), jnp.zeros((B, 8)))) == 0.0
  # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension.
  assert float(losses.kl_standard_normal(jnp.ones((B, 8)), jnp.zeros((B, 8)))) == 4.0
  # Against a Monte Carlo estimate of E_q[log q - log p] for a non-trivial q.
  mean, logvar = np.array([0.5, -1.0]), np.array([-1.0, 0.7])
  z = mean + np.exp(logvar / 2) * np.random.default_rng(0).standard_normal((200_000, 2))
  log_ratio = (stats.norm.logpdf(z, mean, np.exp(logvar / 2)) - stats.norm.logpdf(z)).sum(1)
  got = float(losses.kl_standard_normal(jnp.asarray(mean)[None], jnp.asarray(logvar)[None]))
  assert got == pytest.approx(log_ratio.mean(), abs=0.02)


def test_compute_nll_uses_lambda_100():
  image, mask = targets()
  outputs = {"rgb": image + 0.1, "mask_logits": jnp.zeros((B, S, S, 2))}
  loss, metrics = losses.compute(outputs, image, mask, config())
  rgb = 0.5 * 0.01 * S * S * 3
  assert float(metrics["rgb_loss"]) == pytest.approx(rgb, rel=1e-5)
  assert float(metrics["mask_loss"]) == pytest.approx(np.log(2), rel=1e-5)
  assert float(loss) == pytest.approx(rgb + 100 * np.log(2), rel=1e-5)
  assert float(metrics["loss"]) == float(loss)


def test_compute_euclidean_uses_lambda_0_1_on_the_raw_output():
  image, mask = targets()
  outputs = {"rgb": image, "mask_logits": mask - 0.5}
  loss, metrics = losses.compute(outputs, image, mask, config())
  want_mask = 0.5 * 0.25 * S * S
  assert float(metrics["mask_loss"]) == pytest.approx(want_mask, rel=1e-5)
  assert float(loss) == pytest.approx(0.1 * want_mask, rel=1e-5)
  loss, _ = losses.compute(outputs, image, mask, config(mask_weight=2.0))
  assert float(loss) == pytest.approx(2.0 * want_mask, rel=1e-5)


@pytest.mark.parametrize("kl_weight", [1.0, 10.0])
def test_compute_vae_bound(kl_weight):
  image, mask = targets()
  logits = jnp.where(mask > 0, 2.0, -2.0)
  outputs = {"rgb": image + 0.05, "mask_logits": logits,
             "z_mean": jnp.ones((B, 16)), "z_logvar": jnp.zeros((B, 16))}
  c = config(kl_weight=kl_weight, rgb_sigma=0.2)
  loss, metrics = losses.compute(outputs, image, mask, c)
  assert float(metrics["kl"]) == pytest.approx(8.0)
  assert float(metrics["rgb_loss"]) == pytest.approx(
      float(losses.gaussian_nll(image + 0.05, image, 0.2)), rel=1e-6)
  assert float(metrics["mask_loss"]) == pytest.approx(S * S * np.log1p(np.exp(-2.0)), rel=1e-5)
  assert float(loss) == pytest.approx(
      float(metrics["rgb_loss"] + metrics["mask_loss"]) + kl_weight * 8.0, rel=1e-6)
  explicit, _ = losses.compute(outputs, image, mask, config(kl_weight=kl_weight, rgb_sigma=0.2,
                                                            mask_loss="vae"))
  assert float(explicit) == float(loss)


def test_composited_mse_metric():
  image, mask = targets()
  perfect = {"rgb": image, "mask_logits": jnp.concatenate([1 - mask, mask], -1) * 60 - 30}
  _, metrics = losses.compute(perfect, image, mask, config())
  assert float(metrics["mse"]) < 1e-8
  # Predicting pure background (white) everywhere: error is (x - 1)^2 on the object.
  empty = {"rgb": jnp.zeros_like(image), "mask_logits": jnp.zeros((B, S, S, 1)) - 5.0}
  _, metrics = losses.compute(empty, image, mask, config())
  want = np.mean(np.square((np.asarray(image) + 1 - np.asarray(mask)) - 1.0))
  assert float(metrics["mse"]) == pytest.approx(want, rel=1e-5)


def test_compute_is_jittable_and_differentiable_with_soft_masks():
  image, mask = targets()
  soft = jnp.clip(mask * 0.8 + 0.1, 0, 1)
  outputs = {"rgb": image, "mask_logits": jnp.zeros((B, S, S, 2))}
  grad = jax.jit(jax.grad(lambda o: losses.compute(o, image, soft, config())[0]))(outputs)
  assert bool(jnp.all(jnp.isfinite(grad["mask_logits"])))
  assert float(jnp.abs(grad["mask_logits"]).sum()) > 0


def test_mismatched_configs_and_shapes_raise():
  image, mask = targets()
  two = {"rgb": image, "mask_logits": jnp.zeros((B, S, S, 2))}
  one = {"rgb": image, "mask_logits": jnp.zeros((B, S, S, 1))}
  with pytest.raises(ValueError, match="'euclidean' does not fit a model with 2 mask"):
    losses.compute(two, image, mask, config(mask_loss="euclidean"))
  with pytest.raises(ValueError, match="'vae' does not fit"):
    losses.compute(one, image, mask, config(mask_loss="vae"))
  with pytest.raises(ValueError, match="unknown loss.mask_loss 'l1'"):
    losses.compute(one, image, mask, config(mask_loss="l1"))
  with pytest.raises(ValueError, match="targets must be"):
    losses.compute(one, image[:, :2], mask, config())
