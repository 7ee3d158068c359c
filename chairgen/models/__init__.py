"""The generator networks of Dosovitskiy et al. (sections 3, 4.2; Appendix A).

    config = models.default_config()            # 1s-S-deep; .name picks a variant
    model = models.create_model(config, num_styles=M, image_size=128, theta_dim=T)
    variables = model.init({'params': key, 'sample': key2}, style_BxM, view_Bx4, theta_BxT)
    out = model.apply(variables, style_BxM, view_Bx4, theta_BxT, rngs={'sample': key3})
    out['rgb'], out['mask_logits']              # f32[B, S, S, 3], f32[B, S, S, 2 or 1]
    models.mask_probability(out, config)        # f32[B, S, S, 1] in [0, 1]

See docs/models.md for the architectures, their widths and parameter counts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from chairgen.models import activations
from chairgen.models import layers
from chairgen.models import upconv
from chairgen.models import variants
from chairgen.models.generator import Generator
from chairgen.models.variants import (VARIANTS, Variant, default_config, get_variant,
                                      mask_head, mask_loss_for)

__all__ = ["Generator", "VARIANTS", "Variant", "activations", "count_parameters", "create_model",
           "default_config", "get_variant", "mask_head", "mask_loss_for", "mask_probability",
           "upconv"]

_CONFIG_FIELDS = frozenset(default_config().keys())
# Kernel switches of earlier chairgen versions, still in old runs' run_info.json: they never
# changed the function, so they are accepted and ignored (model.kernels replaces them).
LEGACY_FIELDS = frozenset({"upconv_impl", "conv_impl"})


def create_model(config: ml_collections.ConfigDict, num_styles: int, image_size: int,
                 theta_dim: int | None = None) -> Generator:
  """The generator described by `config` (see `default_config`), validated.

  theta_dim defaults to `chairgen.augment.THETA_DIM`.
  """
  unknown = sorted(set(config.keys()) - _CONFIG_FIELDS - LEGACY_FIELDS)
  if unknown:
    raise ValueError(f"unknown model config field(s) {unknown}; known: {sorted(_CONFIG_FIELDS)}")
  defaults = default_config()
  get = lambda key: config.get(key, defaults[key])  # noqa: E731
  if theta_dim is None:
    from chairgen import augment  # pylint: disable=g-import-not-at-top
    theta_dim = augment.THETA_DIM
  for name, value in (("num_styles", num_styles), ("theta_dim", theta_dim),
                      ("latent_dim", get("latent_dim"))):
    if int(value) != value or value < 1:
      raise ValueError(f"{name} must be a positive integer, got {value!r}")
  variant = get_variant(get("name"))
  variants.num_upconvs(image_size)                     # validates the size
  variants.scale_width(1, get("width_multiplier"))     # validates the multiplier
  layers.uses_cpu_kernels(get("kernels"))              # validates the switch
  return Generator(
      variant=variant, num_styles=int(num_styles), theta_dim=int(theta_dim),
      image_size=int(image_size), mask_head=mask_head(config), vae=bool(get("vae")),
      latent_dim=int(get("latent_dim")), width_multiplier=float(get("width_multiplier")),
      dtype=variants.compute_dtype(get("dtype")), kernels=get("kernels"))


def mask_probability(outputs: dict[str, jax.Array],
                     config: ml_collections.ConfigDict | None = None) -> jax.Array:
  """P(object) per pixel, f32[B, S, S, 1] in [0, 1], from the model's mask output.

  softmax (2 logits): the object class's probability; sigmoid (VAE): sigmoid of the logit;
  linear (Euclidean loss): the regressed value clipped to [0, 1].  Without a config the head is
  inferred from the outputs (2 channels: softmax; 'z_mean' present: sigmoid; else linear).
  """
  logits = outputs["mask_logits"]
  if config is not None:
    head = mask_head(config)
  elif logits.shape[-1] == 2:
    head = "softmax"
  else:
    head = "sigmoid" if "z_mean" in outputs else "linear"
  if head == "softmax":
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)[..., 1:]
  if head == "sigmoid":
    return jax.nn.sigmoid(logits.astype(jnp.float32))
  return jnp.clip(logits.astype(jnp.float32), 0.0, 1.0)



def count_parameters(model: Generator, params=None, *, expanding_only: bool = False) -> int:
  """Number of parameters (of the expanding part u alone with `expanding_only`, as Table 1).

  Without `params` the count comes from shapes only (jax.eval_shape), so any size is free.
  """
  if params is None:
    inputs = (jnp.zeros((1, model.num_styles)), jnp.zeros((1, variants.VIEW_DIM)),
              jnp.zeros((1, model.theta_dim)))
    params = jax.eval_shape(lambda: model.init(
        {"params": jax.random.key(0), "sample": jax.random.key(1)}, *inputs))["params"]
  names = set(model.expanding_layer_names()) if expanding_only else None
  return int(sum(x.size for name, sub in params.items() if names is None or name in names
                 for x in jax.tree.leaves(sub)))
