"""The up-convolutional generator g(c, v, θ) = u ∘ h of section 3.1 (Figure 1).

h: three input streams of two FC layers of 512 units (style c, view v, transformation θ),
concatenated, then FC3 and FC4 of 1024 units.  u: FC5 to an 8x8xC map, then up-convolutions
(4x4, stride 2), each but the last followed by a 3x3 convolution in 'deep' variants; the last
up-convolution outputs the RGB image and the mask (1-stream), or each of the two streams that
split after FC4 ends in its own (2-stream).  ReLU after every layer except the outputs.

Layer names (the activations `chairgen.models.activations` reads and replaces):
  style_fc1 style_fc2 view_fc1 view_fc2 theta_fc1 theta_fc2 fc3 fc4
  1-stream: fc5 upconv1 [conv1] upconv2 [conv2] ... upconvN (output: RGB + mask)
  2-stream: rgb_fc5 rgb_upconv1 ... rgb_upconvN, mask_fc5 mask_upconv1 ... mask_upconvN
  VAE: style_fc1 z_mean z_logvar style_fc2 (= the sampled z) view_fc1 ...
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from chairgen.models import activations
from chairgen.models import layers
from chairgen.models import variants
from chairgen.models import vae as vae_lib

Array = jax.Array


class Generator(nn.Module):
  """g(c, v, θ): (style f[B, M], view f[B, 4], theta f[B, T]) -> outputs dict.

  outputs['rgb']          f32[B, S, S, 3]   the object on black, x·s (targets are in [0, 1])
  outputs['mask_logits']  f32[B, S, S, K]   K = 2 (softmax), 1 (raw, Euclidean) or 1 (sigmoid)
  outputs['z_mean'], outputs['z_logvar']  f32[B, latent_dim]   VAE only

  Build it with `chairgen.models.create_model`, which validates the config.
  """
  variant: variants.Variant
  num_styles: int
  theta_dim: int
  image_size: int
  mask_head: str = "softmax"          # see variants.mask_head
  vae: bool = False
  latent_dim: int = 512
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32
  kernels: str = "auto"               # see layers.KERNELS; does not change the function

  # ------------------------------------------------------------------ static structure

  def _width(self, units: int) -> int:
    return variants.scale_width(units, self.width_multiplier)

  def _stream_prefixes(self) -> tuple[str, ...]:
    return tuple(f"{name}_" if name else "" for name, _ in self.variant.streams)

  def _expanding_layers(self, prefix: str) -> tuple[str, ...]:
    n = variants.num_upconvs(self.image_size)
    names = [f"{prefix}fc5"]
    for i in range(1, n + 1):
      names.append(f"{prefix}upconv{i}")
      if self.variant.deep and i < n:
        names.append(f"{prefix}conv{i}")
    return tuple(names)

  def expanding_layer_names(self) -> tuple[str, ...]:
    """Layers of the expanding part u (FC5 and all up-convolutions/convolutions)."""
    return tuple(n for p in self._stream_prefixes() for n in self._expanding_layers(p))

  def layer_names(self) -> tuple[str, ...]:
    """All named layers, input to output (stream order: style, view, theta)."""
    style = (("style_fc1", "z_mean", "z_logvar", "style_fc2") if self.vae
             else ("style_fc1", "style_fc2"))
    return (style + ("view_fc1", "view_fc2", "theta_fc1", "theta_fc2", "fc3", "fc4")
            + self.expanding_layer_names())

  # ------------------------------------------------------------------ forward pass

  def _check_inputs(self, style: Array, view: Array, theta: Array) -> None:
    expected = {"style": (style, self.num_styles), "view": (view, variants.VIEW_DIM),
                "theta": (theta, self.theta_dim)}
    for name, (x, dim) in expected.items():
      if x.ndim != 2 or x.shape[1] != dim:
        hint = {"style": " (one-hot or a mixture: input_pipeline.style_encoding)",
                "view": " = (sin az, cos az, sin el, cos el): input_pipeline.view_encoding",
                "theta": " (augment.identity_theta(B) for no transformation)"}[name]
        raise ValueError(f"{name} must have shape [B, {dim}]{hint}, got {tuple(x.shape)}")
    batch = {style.shape[0], view.shape[0], theta.shape[0]}
    if len(batch) != 1:
      raise ValueError(f"style, view and theta must share the batch size, got "
                       f"{style.shape[0]}, {view.shape[0]}, {theta.shape[0]}")

  def _dense(self, name: str, units: int, x: Array, relu: bool = True) -> Array:
    return layers.Dense(units, relu=relu, kernels=self.kernels, dtype=self.dtype, name=name)(x)

  def _stream(self, prefix: str, x: Array) -> Array:
    """FC1, FC2 of one input stream."""
    x = self._dense(f"{prefix}_fc1", self._width(variants.FC_STREAM_UNITS), x)
    return self._dense(f"{prefix}_fc2", self._width(variants.FC_STREAM_UNITS), x)

  def _style_latent(self, style: Array, sample_prior: bool, deterministic: bool
                    ) -> tuple[Array, dict[str, Array]]:
    """VAE: q(z|c) and the sampled z in place of style_fc2."""
    h = self._dense("style_fc1", self._width(variants.FC_STREAM_UNITS), style)
    mean = self._dense("z_mean", self.latent_dim, h, relu=False).astype(jnp.float32)
    logvar = self._dense("z_logvar", self.latent_dim, h, relu=False).astype(jnp.float32)
    z = vae_lib.GaussianLatent(name="style_fc2")(
        mean, logvar, sample_prior=sample_prior, deterministic=deterministic)
    z = z.astype(layers.activation_dtype(self.dtype, self.kernels))
    return z, {"z_mean": mean, "z_logvar": logvar}

  def _expand(self, prefix: str, widths: variants.StreamWidths, h: Array,
              out_channels: int) -> Array:
    """u: FC5 -> 8x8xC -> up-convolutions -> f[B, S, S, out_channels] (no output ReLU)."""
    c0 = self._width(widths.fc5)
    x = layers.Dense(variants.BASE_SIZE ** 2 * c0, out_shape=(variants.BASE_SIZE,) * 2 + (c0,),
                     kernels=self.kernels, dtype=self.dtype, name=f"{prefix}fc5")(h)
    hidden = variants.hidden_upconv_widths(widths, self.image_size, self.width_multiplier)
    for i, width in enumerate(hidden, start=1):
      x = layers.UpConv(width, kernels=self.kernels, dtype=self.dtype,
                        name=f"{prefix}upconv{i}")(x)
      if self.variant.deep:
        x = layers.Conv(width, kernels=self.kernels, dtype=self.dtype,
                        name=f"{prefix}conv{i}")(x)
    return layers.UpConv(out_channels, relu=False, kernels=self.kernels, dtype=self.dtype,
                         name=f"{prefix}upconv{len(hidden) + 1}")(x)

  @nn.compact
  def __call__(self, style_BxM: Array, view_Bx4: Array, theta_BxT: Array, *,
               replace: Mapping[str, activations.Replacement] | None = None,
               sample_prior: bool = False, deterministic: bool = False) -> dict[str, Array]:
    """See the class docstring.

    replace: {layer name: array or callable}, see `chairgen.models.activations`.
    sample_prior, deterministic: VAE only; z ~ N(0, I), or z = posterior mean.
    """
    self._check_inputs(style_BxM, view_Bx4, theta_BxT)
    if replace:
      activations.check_names(list(replace), self.layer_names(), "replace")
    if (sample_prior or deterministic) and not self.vae:
      raise ValueError("sample_prior / deterministic apply to the VAE only (model.vae=True); "
                       "for a deterministic net replace 'style_fc2' instead")
    with activations.replacing(replace):
      extra = {}
      if self.vae:
        style, extra = self._style_latent(style_BxM, sample_prior, deterministic)
      else:
        style = self._stream("style", style_BxM)
      h = jnp.concatenate(
          [style, self._stream("view", view_Bx4), self._stream("theta", theta_BxT)], axis=-1)
      h = self._dense("fc3", self._width(variants.FC_JOINT_UNITS), h)
      h = self._dense("fc4", self._width(variants.FC_JOINT_UNITS), h)

      n_mask = variants.mask_channels(self.mask_head)
      if self.variant.two_stream:
        (rgb_prefix, rgb_widths), (mask_prefix, mask_widths) = self.variant.streams
        rgb = self._expand(f"{rgb_prefix}_", rgb_widths, h, 3)
        mask = self._expand(f"{mask_prefix}_", mask_widths, h, n_mask)
      else:
        (_, widths), = self.variant.streams
        out = self._expand("", widths, h, 3 + n_mask)
        rgb, mask = out[..., :3], out[..., 3:]
    return {"rgb": rgb.astype(jnp.float32), "mask_logits": mask.astype(jnp.float32), **extra}
