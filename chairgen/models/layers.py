"""The generator's named layers: each module's output (after its ReLU) is one activation.

Every layer is its own module whose `__call__` returns the activation the paper talks about
(FC outputs after ReLU, FC5 reshaped to its 8x8 feature map, up-convolution feature maps), so
`chairgen.models.activations` can read and replace activations by module name.  Parameters are
`kernel` and `bias` directly under the layer's name (e.g. params['fc3']['kernel']), stored in
float32; `dtype` is the computation dtype.

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

from chairgen.models import upconv as upconv_lib
from chairgen.models import winograd

Array = jax.Array
Dtype = Any

he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
# fan_in computed by variance_scaling for a [4, 4, Cin, Cout] kernel is 16 Cin; the true fan-in
# of the stride-2 up-convolution is 4 Cin, hence the factor 4.
he_normal_upconv = nn.initializers.variance_scaling(2.0 * 4, "fan_in", "normal")


# How layers.Conv computes its 3x3 convolution (all share the [3, 3, Cin, Cout] kernel, so
# checkpoints are interchangeable):
#  'winograd':   F(2x2, 3x3) as 16 batched GEMMs (models/winograd.py), gradients as batched
#                GEMMs between elementwise transforms (its own VJP); the
#                fastest train step on XLA:CPU (docs/performance.md);
#  'winograd_autodiff': the same forward pass with autodiff's gradients (for comparisons);
#  'winograd4':  F(4x4, 3x3): 4x fewer multiplications, but slower there (its transforms cost
#                more than the GEMMs it saves);
#  'gemm_wgrad': XLA's convolution and input gradient, kernel gradient as one GEMM per tap;
#  'xla':        XLA's convolution and its own gradients (the reference; cuDNN on GPUs);
#  'auto':       'winograd' on the CPU, 'xla' elsewhere (cuDNN / the TPU's convolutions).
#                With glibc's defaults the 48-channel conv3 of 1s-S-deep at 128 px was faster
#                with 'gemm_wgrad'; with chairgen.host_memory keeping freed buffers mapped
#                (what every entry point does), Winograd is faster at every width measured.
CONV_IMPLS = ("auto", "winograd", "winograd_autodiff", "winograd4", "gemm_wgrad", "xla")


def resolve_conv_impl(impl: str) -> str:
  """'auto' -> the implementation for the default backend; validates."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"unknown conv_impl {impl!r}; choose one of {CONV_IMPLS}")
  if impl != "auto":
    return impl
  return "winograd" if jax.default_backend() == "cpu" else "xla"


class Layer(nn.Module):
  """Base class of named layers (what `activations` intercepts)."""


def _activate(y: Array, relu: bool) -> Array:
  return nn.relu(y) if relu else y


class Dense(Layer):
  """Fully connected layer: f[B, Din] -> f[B, features] (or f[B, *out_shape])."""
  features: int
  relu: bool = True
  out_shape: tuple[int, ...] | None = None   # e.g. (8, 8, C) for FC5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", he_normal, (x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
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
  impl: str = "auto"   # one of CONV_IMPLS
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k = self.kernel_size
    kernel = self.param("kernel", he_normal, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    impl = resolve_conv_impl(self.impl)
    if impl.startswith("winograd") and k == 3:
      y = winograd.conv3x3(x, kernel, tile=4 if impl == "winograd4" else 2,
                           autodiff=impl == "winograd_autodiff")
    elif impl == "gemm_wgrad":
      pad = ((0, 0), ((k - 1) // 2, k // 2), ((k - 1) // 2, k // 2), (0, 0))   # as "SAME"
      y = upconv_lib.conv_valid_gemm_wgrad(jnp.pad(x, pad), kernel)
    else:
      y = lax.conv_general_dilated(x, kernel, window_strides=(1, 1), padding="SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return _activate(y + bias.astype(self.dtype), self.relu)


class UpConv(Layer):
  """4x4 stride-2 up-convolution: f[B, H, W, Cin] -> f[B, 2H, 2W, features].

  `impl` picks the implementation from `upconv.IMPLEMENTATIONS`; all share the kernel layout
  [4, 4, Cin, Cout], so parameters are interchangeable between them.
  """
  features: int
  relu: bool = True
  impl: str = "auto"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", he_normal_upconv,
                        (upconv_lib.KERNEL_SIZE, upconv_lib.KERNEL_SIZE, x.shape[-1],
                         self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    y = upconv_lib.get_upconv(self.impl)(x.astype(self.dtype), kernel.astype(self.dtype))
    return _activate(y + bias.astype(self.dtype), self.relu)
