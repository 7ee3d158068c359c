"""The up-convolution by output phase, with GEMM kernel gradients (XLA:CPU; see __init__).

Output pixel (2m + r) only ever sees input pixels m - 1 + r and m + r (taps 0, 2 of the kernel
for r = 0; taps 1, 3 for r = 1), so one 2x2 VALID convolution of the 1-padded input with
4 * Cout output channels (one group per phase (ry, rx)) followed by a shifted depth-to-space
gives `upconv.upconv_reference`'s result with no multiplications by inserted zeros.  Its
kernel gradient is one 2-D matrix product per kernel tap (`conv_valid_gemm_wgrad`) instead of
XLA:CPU's weight-gradient convolution, whose window spans the whole feature map; for the narrow
output layers (RGB + mask) one im2col GEMM over all 16 taps instead.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from chairgen.models.cpu_kernels import tiles
from chairgen.models.upconv import DIMENSION_NUMBERS, KERNEL_SIZE, PHASE_TAPS, check_shapes

Array = jax.Array


def phase_kernels(kernel_4x4xCinxCout: Array) -> Array:
  """Splits the kernel by output phase: [ry, rx, 2, 2, Cin, Cout]."""
  k = kernel_4x4xCinxCout[PHASE_TAPS]            # [ry, a, 4, Cin, Cout]
  k = k[:, :, PHASE_TAPS]                        # [ry, a, rx, b, Cin, Cout]
  return jnp.transpose(k, (0, 2, 1, 3, 4, 5))     # [ry, rx, a, b, Cin, Cout]


def _weight_grad_by_taps(x_pad: Array, dy: Array, kernel_shape) -> Array:
  """dK[i, j] = Σ_{b,h,w} x_pad[b, h + i, w + j]ᵀ dy[b, h, w]: one 2-D GEMM per kernel tap.

  x_pad f[B, H + kh - 1, W + kw - 1, Cin], dy f[B, H, W, Cout] -> f[kh, kw, Cin, Cout].
  Accumulates in float32 (bf16 inputs sum over B·H·W products) and returns the kernel dtype.
  """
  kh, kw, c_in, c_out = kernel_shape
  _, h, w, _ = dy.shape
  dy_NxCout = dy.reshape(-1, c_out)
  taps = [jnp.dot(x_pad[:, i:i + h, j:j + w].reshape(-1, c_in).T, dy_NxCout,
                  preferred_element_type=jnp.float32)
          for i in range(kh) for j in range(kw)]
  return jnp.stack(taps).reshape(kh, kw, c_in, c_out)


def _valid_conv(x_pad: Array, kernel: Array) -> Array:
  return lax.conv_general_dilated(x_pad, kernel, window_strides=(1, 1), padding="VALID",
                                  dimension_numbers=DIMENSION_NUMBERS)


def with_kernel_grad(forward: Callable[[Array, Array], Array],
                     kernel_grad: Callable[[Array, Array, tuple], Array]
                     ) -> Callable[[Array, Array], Array]:
  """forward(x, kernel) with autodiff's input gradient and kernel_grad(x, dy, kernel.shape)."""

  @jax.custom_vjp
  def fn(x, kernel):
    return forward(x, kernel)

  def fn_fwd(x, kernel):
    return forward(x, kernel), (x, kernel)

  def fn_bwd(residuals, dy):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x_: forward(x_, kernel), x)
    dx, = input_vjp(dy)
    return dx, kernel_grad(x, dy, kernel.shape).astype(kernel.dtype)

  fn.defvjp(fn_fwd, fn_bwd)
  return fn


# Stride-1 VALID convolution (NHWC, HWIO) whose kernel gradient is a GEMM per tap: forward and
# input gradient are XLA's (see the module docstring).
conv_valid_gemm_wgrad = with_kernel_grad(_valid_conv, _weight_grad_by_taps)


def _upconv_phase_with(conv: Callable[[Array, Array], Array]):
  def upconv_fn(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
    check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
    _, h, w, _ = x_BxHxWxCin.shape
    c_in, c_out = kernel_4x4xCinxCout.shape[2:]
    k = phase_kernels(kernel_4x4xCinxCout)         # [ry, rx, a, b, Cin, Cout]
    k = jnp.transpose(k, (2, 3, 4, 0, 1, 5)).reshape(2, 2, c_in, 4 * c_out)
    x_pad = jnp.pad(x_BxHxWxCin, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = conv(x_pad, k)                              # [B, H+1, W+1, 4*Cout]
    y = y.reshape(*y.shape[:3], 2, 2, c_out)
    # Phase r reads the window starting at padded position m + r.
    return tiles.interleave(lambda ry, rx: y[:, ry:ry + h, rx:rx + w, ry, rx])
  return upconv_fn


_upconv_phase_taps = _upconv_phase_with(conv_valid_gemm_wgrad)
_upconv_phase_forward = _upconv_phase_with(_valid_conv)

# Up-convolutions with at most this many output channels (the output layers: RGB + mask) take
# their kernel gradient as one im2col GEMM (`upconv_phase_im2col`), wider ones a GEMM per tap:
# the faster of the two for each on XLA:CPU (docs/performance.md).
IM2COL_WGRAD_MAX_CHANNELS = 8


def upconv_phase(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """Up-convolution as one 2x2 convolution with 4 * Cout channels: f[B, 2H, 2W, Cout].

  The kernel gradient is a GEMM per tap (`conv_valid_gemm_wgrad`), or one im2col GEMM for
  narrow outputs (`upconv_phase_im2col`); the values are the same either way.
  """
  if kernel_4x4xCinxCout.shape[-1] <= IM2COL_WGRAD_MAX_CHANNELS:
    return upconv_phase_im2col(x_BxHxWxCin, kernel_4x4xCinxCout)
  return _upconv_phase_taps(x_BxHxWxCin, kernel_4x4xCinxCout)


def _upconv_kernel_grad_im2col(x_BxHxWxCin: Array, dy_Bx2Hx2WxCout: Array) -> Array:
  """dK[t] = Σ_m x[m]ᵀ dy[2m + 2 - t] for all 16 taps as one GEMM: f[4, 4, Cin, Cout].

  The input is read as it is ([B·H·W, Cin], no shifted copies); only dy is gathered, into
  its im2col [B·H·W, 16 Cout], which is small where it matters most (the output layers, with
  4-5 channels, whose per-tap GEMMs were slow on XLA:CPU: docs/performance.md).
  """
  b, h, w, c_in = x_BxHxWxCin.shape
  c_out = dy_Bx2Hx2WxCout.shape[-1]
  dy_pad = jnp.pad(dy_Bx2Hx2WxCout, ((0, 0), (1, 1), (1, 1), (0, 0)))
  cols = [dy_pad[:, 3 - ty:3 - ty + 2 * h:2, 3 - tx:3 - tx + 2 * w:2]
          for ty in range(KERNEL_SIZE) for tx in range(KERNEL_SIZE)]      # 16 x [B, H, W, C]
  cols = tiles.stack(cols, axis=3).reshape(b * h * w, 16 * c_out)
  dk = jnp.dot(x_BxHxWxCin.reshape(-1, c_in).T, cols, preferred_element_type=jnp.float32)
  return jnp.transpose(dk.reshape(c_in, KERNEL_SIZE, KERNEL_SIZE, c_out), (1, 2, 0, 3))


# `upconv_phase`'s forward pass and input gradient; kernel gradient as one im2col GEMM.
upconv_phase_im2col = with_kernel_grad(
    _upconv_phase_forward, lambda x, dy, _: _upconv_kernel_grad_im2col(x, dy))
