"""Losses of equation (1) and the variational bound of Appendix A, with Caffe's conventions.

Targets are floats in [0, 1]: `image` is the RGB target T(x·s) (the object on black), `mask` is
T(s); both may be soft (the augmentation warps them bilinearly).  Every loss is a scalar
averaged over the batch:

- 'nll' (1s-S*, 2s-S): 0.5 Σ_pixels,channels (rgb - x·s)² (Caffe EuclideanLoss: halved sum,
  divided by the batch) + λ · softmax cross-entropy of the 2 mask logits, averaged over pixels
  (Caffe SoftmaxWithLoss), λ = 100.
- 'euclidean' (2s-E): the same RGB term + λ · 0.5 Σ_pixels (m - s)² on the raw 1-channel mask
  output m (Caffe regresses the mask directly, no sigmoid), λ = 0.1.
- 'vae' (Appendix A): the negative bound, per image: Gaussian NLL of x·s with mean rgb and fixed
  σ (`rgb_sigma`) + Bernoulli NLL of s under sigmoid(logit), both summed over pixels, +
  kl_weight · KL(q(z|c) || N(0, I)).

mask_loss None infers the kind from the outputs ('z_mean' present: vae; 2 mask channels: nll;
1: euclidean); mask_weight None takes the paper's λ for that kind (1 for the VAE).

metrics['mse'] is the per-pixel MSE of the images composited on white, in [0, 1] (docs/models.md):
mean over pixels and channels of (clip(rgb) + (1 - p) - (x·s + (1 - s)))², p the predicted
mask probability, clipped to [0, 1].
"""

from __future__ import annotations

import math
from typing import Mapping

import jax
import jax.numpy as jnp
import ml_collections

from chairgen import models

Array = jax.Array

MASK_LOSSES = ("nll", "euclidean", "vae")
DEFAULT_MASK_WEIGHTS = {"nll": 100.0, "euclidean": 0.1, "vae": 1.0}


def default_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.mask_loss = ml_collections.FieldReference(None, field_type=str)      # see module doc
  config.mask_weight = ml_collections.FieldReference(None, field_type=float)  # λ; None: paper's
  config.rgb_sigma = 0.1    # VAE: σ of the Gaussian RGB likelihood, on [0, 1] images
  config.kl_weight = 1.0    # VAE: ×1 and ×10 in Figure 17 (f) and (e)
  return config


def _per_example_sum(x: Array) -> Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


def euclidean(pred: Array, target: Array) -> Array:
  """Caffe EuclideanLoss: 0.5 Σ (pred - target)² over everything but the batch, batch mean."""
  return 0.5 * jnp.mean(_per_example_sum(jnp.square(pred - target)))


def softmax_nll(logits_BxHxWx2: Array, mask_BxHxWx1: Array) -> Array:
  """Caffe SoftmaxWithLoss on 2 classes with soft targets: mean over pixels and batch."""
  logp = jax.nn.log_softmax(logits_BxHxWx2, axis=-1)
  s = mask_BxHxWx1[..., 0]
  return -jnp.mean(s * logp[..., 1] + (1.0 - s) * logp[..., 0])


def bernoulli_nll(logits_BxHxWx1: Array, mask_BxHxWx1: Array) -> Array:
  """-log p(s | sigmoid(logits)) summed over pixels (soft s allowed), batch mean."""
  nll = jax.nn.softplus(logits_BxHxWx1) - mask_BxHxWx1 * logits_BxHxWx1
  return jnp.mean(_per_example_sum(nll))


def gaussian_nll(mean: Array, target: Array, sigma: float) -> Array:
  """-log N(target; mean, σ² I) summed over pixels and channels, batch mean."""
  d = target[0].size
  sq = _per_example_sum(jnp.square((target - mean) / sigma))
  return jnp.mean(0.5 * sq + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi)))


def kl_standard_normal(z_mean_BxD: Array, z_logvar_BxD: Array) -> Array:
  """KL(N(mean, diag exp(logvar)) || N(0, I)) per example, batch mean."""
  kl = 0.5 * (jnp.square(z_mean_BxD) + jnp.exp(z_logvar_BxD) - 1.0 - z_logvar_BxD)
  return jnp.mean(jnp.sum(kl, axis=-1))


def composited_mse(rgb_BxHxWx3: Array, mask_prob_BxHxWx1: Array, image_BxHxWx3: Array,
                   mask_BxHxWx1: Array) -> Array:
  """Per-pixel MSE of prediction and target, each x·s composited on white, in [0, 1]."""
  pred = jnp.clip(jnp.clip(rgb_BxHxWx3, 0.0, 1.0) + 1.0 - mask_prob_BxHxWx1, 0.0, 1.0)
  true = jnp.clip(image_BxHxWx3 + 1.0 - mask_BxHxWx1, 0.0, 1.0)
  return jnp.mean(jnp.square(pred - true))


def resolve_mask_loss(outputs: Mapping[str, Array], config: ml_collections.ConfigDict) -> str:
  """The loss kind for these outputs ('nll', 'euclidean' or 'vae'), checked against them."""
  channels = outputs["mask_logits"].shape[-1]
  is_vae = "z_mean" in outputs
  inferred = "vae" if is_vae else {2: "nll", 1: "euclidean"}.get(channels)
  kind = config.get("mask_loss") or inferred
  if kind not in MASK_LOSSES:
    raise ValueError(f"unknown loss.mask_loss {kind!r}; choose one of {MASK_LOSSES} or None "
                     "(inferred from the model)")
  if kind != inferred:
    what = ("a VAE (model.vae=True)" if is_vae else
            f"a model with {channels} mask channel(s)")
    raise ValueError(f"loss.mask_loss={kind!r} does not fit {what}, which needs "
                     f"{inferred!r}: set loss.mask_loss to {inferred!r} or None, or change "
                     "model.name / model.mask_loss / model.vae")
  return kind


def compute(outputs: Mapping[str, Array], image_BxHxWx3: Array, mask_BxHxWx1: Array,
            config: ml_collections.ConfigDict) -> tuple[Array, dict[str, Array]]:
  """(loss, metrics) for a batch; see the module docstring.  All values are f32 scalars.

  outputs: the generator's dict; image: T(x·s) in [0, 1]; mask: T(s) in [0, 1].
  metrics: rgb_loss, mask_loss, loss, mse, and for the VAE kl.
  """
  rgb = outputs["rgb"].astype(jnp.float32)
  logits = outputs["mask_logits"].astype(jnp.float32)
  image = jnp.asarray(image_BxHxWx3, jnp.float32)
  mask = jnp.asarray(mask_BxHxWx1, jnp.float32)
  if image.shape != rgb.shape or mask.shape != rgb.shape[:-1] + (1,):
    raise ValueError(f"targets must be image {rgb.shape} and mask {rgb.shape[:-1] + (1,)} "
                     f"(the model's output size), got {image.shape} and {mask.shape}")
  kind = resolve_mask_loss(outputs, config)
  weight = config.get("mask_weight")
  weight = DEFAULT_MASK_WEIGHTS[kind] if weight is None else float(weight)

  metrics = {}
  if kind == "vae":
    rgb_loss = gaussian_nll(rgb, image, float(config.rgb_sigma))
    mask_loss = bernoulli_nll(logits, mask)
    kl = kl_standard_normal(outputs["z_mean"].astype(jnp.float32),
                            outputs["z_logvar"].astype(jnp.float32))
    loss = rgb_loss + weight * mask_loss + float(config.kl_weight) * kl
    metrics["kl"] = kl
  else:
    rgb_loss = euclidean(rgb, image)
    mask_loss = softmax_nll(logits, mask) if kind == "nll" else euclidean(logits, mask)
    loss = rgb_loss + weight * mask_loss
  mask_prob = jax.lax.stop_gradient(models.mask_probability(outputs))
  metrics.update(rgb_loss=rgb_loss, mask_loss=mask_loss, loss=loss,
                 mse=composited_mse(jax.lax.stop_gradient(rgb), mask_prob, image, mask))
  return loss, metrics
