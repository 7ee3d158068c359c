"""The generator's named layers: each module's output (after its ReLU) is one activation.

Every layer is its own module whose `__call__` returns the activation the paper talks about
(FC outputs after ReLU, FC5 reshaped to its 8x8 feature map, up-convolution feature maps), so
`chairgen.models.activations` can read and replace activations by module name.  Parameters are
`kernel` and `bias` directly under the layer's name (e.g. params['fc3']['kernel']), stored in
float32; `dtype` is the computation dtype (`activation_dtype`: on the CPU path, bfloat16 only
for the matrix products' inputs).

Initialisation is He et al.'s: zero-mean Gaussian with variance 2 / fan_in (section 4.1), where
the fan-in of a stride-2 up-convolution is 2 * 2 * Cin (each output pixel sees 2x2 input pixels
of the bed-of-nails-upsampled map, not all 4x4 kernel taps).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from chairgen.models import cpu_kernels
from chairgen.models import upconv as upconv_lib

Array = jax.Array
Dtype = Any

he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
# fan_in computed by variance_scaling for a [4, 4, Cin, Cout] kernel is 16 Cin; the true fan-in
# of the stride-2 up-convolution is 4 Cin, hence the factor 4.
he_normal_upconv = nn.initializers.variance_scaling(2.0 * 4, "fan_in", "normal")


# `model.kernels`: how the convolutions are computed. All compute the same functions of the
# same parameters (checkpoints load with any):
#  'auto': the fastest measured path on each backend: `cpu_kernels` on the CPU, XLA's own
#          convolutions on GPUs and TPUs (until a measurement there says otherwise);
#  'xla':  XLA's own convolutions everywhere (the reference);
#  'jax':  `cpu_kernels`' pure-JAX forms (Winograd and sub-pixel GEMMs, no oneDNN) on every
#          backend: what `auto` would run on a GPU or TPU if it chose them (tools/benchmark.py
#          --extra=kernels=jax measures that).
KERNELS = ("auto", "xla", "jax")


def uses_cpu_kernels(kernels: str) -> bool:
  """Whether `kernels` means `cpu_kernels` on the default backend; validates."""
  if kernels not in KERNELS:
    raise ValueError(f"unknown model.kernels {kernels!r}; choose one of {KERNELS}")
  return kernels == "jax" or (kernels == "auto" and jax.default_backend() == "cpu")


def activation_dtype(dtype: Dtype, kernels: str) -> Dtype:
  """The dtype activations are kept in for computation dtype `dtype`.

  With `cpu_kernels` (kernels='auto' on the CPU) float32: `dtype` then applies to the operands
  of the matrix products only, which sum in float32 (`cpu_kernels` docstring: XLA:CPU's bf16
  GEMMs are fast, its bf16 element-wise code slow). Elsewhere `dtype` itself.
  """
  return jnp.float32 if uses_cpu_kernels(kernels) else dtype


class Layer(nn.Module):
  """Base class of named layers (what `activations` intercepts)."""


def _activate(y: Array, relu: bool) -> Array:
  return nn.relu(y) if relu else y


class Dense(Layer):
  """Fully connected layer: f[B, Din] -> f[B, features] (or f[B, *out_shape])."""
  features: int
  relu: bool = True
  out_shape: tuple[int, ...] | None = None   # e.g. (8, 8, C) for FC5
  kernels: str = "auto"   # one of KERNELS: decides `activation_dtype`
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", he_normal, (x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    if uses_cpu_kernels(self.kernels):
      y = cpu_kernels.dense(x.astype(jnp.float32), kernel, self.dtype,
                            onednn_allowed=self.kernels != "jax") + bias
    else:
      y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype)) + bias.astype(self.dtype)
    y = _activate(y, self.relu)
    if self.out_shape is not None:
      y = y.reshape(*y.shape[:-1], *self.out_shape)
    return y


class Conv(Layer):
  """3x3 'SAME' convolution with stride 1: f[B, H, W, Cin] -> f[B, H, W, features]."""
  features: int
  relu: bool = True
  kernel_size: int = 3
  kernels: str = "auto"   # one of KERNELS
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k = self.kernel_size
    kernel = self.param("kernel", he_normal, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    dtype = activation_dtype(self.dtype, self.kernels)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    if uses_cpu_kernels(self.kernels) and k == 3:
      y = cpu_kernels.conv3x3(x, kernel, operands=self.dtype,
                              onednn_allowed=self.kernels != "jax")
    else:
      y = lax.conv_general_dilated(x, kernel, window_strides=(1, 1), padding="SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return _activate(y + bias.astype(dtype), self.relu)


class UpConv(Layer):
  """4x4 stride-2 up-convolution: f[B, H, W, Cin] -> f[B, 2H, 2W, features].

  The kernel layout is [4, 4, Cin, Cout] whichever `kernels` computes it.
  """
  features: int
  relu: bool = True
  kernels: str = "auto"   # one of KERNELS
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", he_normal_upconv,
                        (upconv_lib.KERNEL_SIZE, upconv_lib.KERNEL_SIZE, x.shape[-1],
                         self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    dtype = activation_dtype(self.dtype, self.kernels)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    if uses_cpu_kernels(self.kernels):
      y = cpu_kernels.upconv(x, kernel, operands=self.dtype,
                             onednn_allowed=self.kernels != "jax")
    else:
      y = upconv_lib.upconv_reference(x, kernel)
    return _activate(y + bias.astype(dtype), self.relu)
