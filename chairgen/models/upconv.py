"""The 4x4, stride-2 up-convolution of section 3.1 ("bed of nails" upsampling + convolution).

All implementations below compute the same linear map with the same kernel
`kernel_4x4xCinxCout` (layout HWIO), so checkpoints are interchangeable between them:

    y = correlate(bed_of_nails(x), kernel, padding=2 on every side)

where `bed_of_nails` puts x[i, j] at (2i, 2j) and zeros elsewhere.  The output is exactly twice
the input size, as Caffe's Deconvolution layer with kernel 4, stride 2, pad 1 (which is the
gradient of a stride-2 convolution; its weights are this kernel flipped in both spatial axes).

- `upconv_reference`: `lax.conv_transpose` (what `flax.linen.ConvTranspose` with
  `padding='SAME'` computes).  On the CPU, XLA's weight gradient of this op is ~65x slower than
  its forward pass (jax-ml/jax#31662).
- `upconv_phase`: the exact rewrite by output phase.  Output pixel (2m + r) only ever sees
  input pixels m - 1 + r and m + r (taps 0, 2 of the kernel for r = 0; taps 1, 3 for r = 1), so
  one 2x2 VALID convolution of the 1-padded input with 4 * Cout output channels (one group per
  phase (ry, rx)) followed by a shifted depth-to-space gives the result with no multiplications
  by inserted zeros.  `upconv_phase4` does the same with four separate 2x2 convolutions; see
  `python tools/benchmark_layers.py` and docs/models.md for which is faster.

  Its kernel gradient is computed by `conv_valid_gemm_wgrad`: one 2-D matrix product per kernel
  tap instead of XLA:CPU's weight-gradient convolution, whose window spans the whole feature
  map and ran 2-5x slower than the forward pass (docs/performance.md); for the narrow output
  layers (RGB + mask) one im2col GEMM over all 16 taps instead (`upconv_phase_im2col`), 2x
  faster there.  `phase_autodiff` is the same forward with XLA's own gradient, kept for
  comparisons.
- `upconv_winograd`: each phase's 2x2 convolution by Winograd's F(2x2, 2x2), all four phases
  as 36 batched GEMMs per 4x4 output tile (`winograd.py`), with GEMM gradients: faster than
  `upconv_phase` on XLA:CPU for the wide layers.  `upconv_auto` ('auto', the default) picks
  it on the CPU for layers of at least WINOGRAD_MIN_CHANNELS outputs and `upconv_phase`
  otherwise.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from chairgen.models import tiles
from chairgen.models import winograd

Array = jax.Array

KERNEL_SIZE = 4
STRIDE = 2
# Padding of the bed-of-nails input on each side: (2, 2) is what lax.conv_transpose calls
# 'SAME' for kernel 4, stride 2, and gives an output of exactly 2x the input size.
_PAD = ((2, 2), (2, 2))
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
# Kernel taps used by output phase r (0: even rows/columns, 1: odd), in input order.
_PHASE_TAPS = np.array([[0, 2], [1, 3]])


def _check_shapes(x_BxHxWxCin: Array, kernel: Array) -> None:
  if x_BxHxWxCin.ndim != 4:
    raise ValueError(f"up-convolution input must be [B, H, W, C], got shape {x_BxHxWxCin.shape}")
  if kernel.shape[:2] != (KERNEL_SIZE, KERNEL_SIZE) or kernel.ndim != 4:
    raise ValueError(
        f"up-convolution kernel must be [4, 4, Cin, Cout], got shape {kernel.shape}")
  if kernel.shape[2] != x_BxHxWxCin.shape[-1]:
    raise ValueError(
        f"kernel expects {kernel.shape[2]} input channels, input has {x_BxHxWxCin.shape[-1]}")


def upconv_reference(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """Reference up-convolution via `lax.conv_transpose`: f[B, 2H, 2W, Cout]."""
  _check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
  return lax.conv_transpose(
      x_BxHxWxCin, kernel_4x4xCinxCout, strides=(STRIDE, STRIDE), padding=_PAD,
      dimension_numbers=_DIMENSION_NUMBERS, transpose_kernel=False)


def _phase_kernels(kernel_4x4xCinxCout: Array) -> Array:
  """Splits the kernel by output phase: [ry, rx, 2, 2, Cin, Cout]."""
  k = kernel_4x4xCinxCout[_PHASE_TAPS]            # [ry, a, 4, Cin, Cout]
  k = k[:, :, _PHASE_TAPS]                        # [ry, a, rx, b, Cin, Cout]
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
                                  dimension_numbers=_DIMENSION_NUMBERS)


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
# input gradient are XLA's (see the module docstring).  Used by `upconv_phase` and by
# `layers.Conv(impl='gemm_wgrad')`.
conv_valid_gemm_wgrad = with_kernel_grad(_valid_conv, _weight_grad_by_taps)


def _upconv_phase_with(conv: Callable[[Array, Array], Array]):
  def upconv_fn(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
    _check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
    _, h, w, _ = x_BxHxWxCin.shape
    c_in, c_out = kernel_4x4xCinxCout.shape[2:]
    k = _phase_kernels(kernel_4x4xCinxCout)         # [ry, rx, a, b, Cin, Cout]
    k = jnp.transpose(k, (2, 3, 4, 0, 1, 5)).reshape(2, 2, c_in, 4 * c_out)
    x_pad = jnp.pad(x_BxHxWxCin, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = conv(x_pad, k)                              # [B, H+1, W+1, 4*Cout]
    y = y.reshape(*y.shape[:3], 2, 2, c_out)
    # Phase r reads the window starting at padded position m + r.
    return tiles.interleave(lambda ry, rx: y[:, ry:ry + h, rx:rx + w, ry, rx])
  return upconv_fn


_upconv_phase_taps = _upconv_phase_with(conv_valid_gemm_wgrad)
_upconv_phase_autodiff = _upconv_phase_with(_valid_conv)

# Up-convolutions with at most this many output channels (the output layers: RGB + mask) take
# their kernel gradient as one im2col GEMM (`upconv_phase_im2col`), wider ones a GEMM per tap:
# each is the faster of the two there on XLA:CPU (docs/performance.md).
IM2COL_WGRAD_MAX_CHANNELS = 8


def upconv_phase(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """Up-convolution as one 2x2 convolution with 4 * Cout channels: f[B, 2H, 2W, Cout].

  The kernel gradient is a GEMM per tap (`conv_valid_gemm_wgrad`), or one im2col GEMM for
  narrow outputs (`upconv_phase_im2col`); the values are the same either way.
  """
  if kernel_4x4xCinxCout.shape[-1] <= IM2COL_WGRAD_MAX_CHANNELS:
    return upconv_phase_im2col(x_BxHxWxCin, kernel_4x4xCinxCout)
  return _upconv_phase_taps(x_BxHxWxCin, kernel_4x4xCinxCout)


def upconv_phase_autodiff(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """`upconv_phase` with XLA's own gradient (slower on the CPU; for comparisons)."""
  return _upconv_phase_autodiff(x_BxHxWxCin, kernel_4x4xCinxCout)


def upconv_phase4(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """Up-convolution as four 2x2 convolutions, one per output phase: f[B, 2H, 2W, Cout]."""
  _check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
  _, h, w, _ = x_BxHxWxCin.shape
  k = _phase_kernels(kernel_4x4xCinxCout)
  x_pad = jnp.pad(x_BxHxWxCin, ((0, 0), (1, 1), (1, 1), (0, 0)))

  def phase(ry, rx):
    return lax.conv_general_dilated(
        x_pad[:, ry:ry + h + 1, rx:rx + w + 1], k[ry, rx], window_strides=(1, 1),
        padding="VALID", dimension_numbers=_DIMENSION_NUMBERS)

  return tiles.interleave(phase)


def _upconv_kernel_grad_im2col(x_BxHxWxCin: Array, dy_Bx2Hx2WxCout: Array) -> Array:
  """dK[t] = Σ_m x[m]ᵀ dy[2m + 2 - t] for all 16 taps as one GEMM: f[4, 4, Cin, Cout].

  The input is read as it is ([B·H·W, Cin], no shifted copies); only dy is gathered, into
  its im2col [B·H·W, 16 Cout], which is small where it matters most (the output layers, with
  4-5 channels, whose per tap GEMMs ran ~10x slower than their forward pass on XLA:CPU).
  """
  b, h, w, c_in = x_BxHxWxCin.shape
  c_out = dy_Bx2Hx2WxCout.shape[-1]
  dy_pad = jnp.pad(dy_Bx2Hx2WxCout, ((0, 0), (1, 1), (1, 1), (0, 0)))
  cols = [dy_pad[:, 3 - ty:3 - ty + 2 * h:2, 3 - tx:3 - tx + 2 * w:2]
          for ty in range(KERNEL_SIZE) for tx in range(KERNEL_SIZE)]      # 16 x [B, H, W, C]
  cols = jnp.stack(cols, axis=3).reshape(b * h * w, 16 * c_out)
  dk = jnp.dot(x_BxHxWxCin.reshape(-1, c_in).T, cols, preferred_element_type=jnp.float32)
  return jnp.transpose(dk.reshape(c_in, KERNEL_SIZE, KERNEL_SIZE, c_out), (1, 2, 0, 3))


# `upconv_phase`'s forward pass and input gradient; kernel gradient as one im2col GEMM.
upconv_phase_im2col = with_kernel_grad(
    _upconv_phase_autodiff, lambda x, dy, _: _upconv_kernel_grad_im2col(x, dy))


def upconv_winograd(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """Up-convolution as Winograd F(2x2, 2x2) per output phase: f[B, 2H, 2W, Cout].

  36 batched GEMMs [B·H/2·W/2, Cin] x [Cin, Cout] per 4x4 output tile (2.25 products per
  output pixel where `upconv_phase` has 4), gradients as batched GEMMs too
  (`winograd.tiled_products`).  Odd-sized inputs fall back to `upconv_phase`.
  """
  _check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
  _, h, w, _ = x_BxHxWxCin.shape
  if h % 2 or w % 2:
    return upconv_phase(x_BxHxWxCin, kernel_4x4xCinxCout)
  u = winograd.transform_upconv_kernel(_phase_kernels(kernel_4x4xCinxCout))
  return winograd.tiled_products(x_BxHxWxCin, u, "upconv_f2")


# On the CPU, up-convolutions with at least this many output channels run as `upconv_winograd`
# in 'auto', narrower ones as `upconv_phase` (per layer, the faster of the two on XLA:CPU:
# Winograd's transforms cost more than its GEMMs save for 48 and 5 channels;
# docs/performance.md).
WINOGRAD_MIN_CHANNELS = 64


def upconv_auto(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """'auto': on the CPU `upconv_winograd` for wide layers, else `upconv_phase`; elsewhere
  XLA's own `conv_transpose` (cuDNN and the TPU compiler are tuned for it; the CPU kernels
  were written for XLA:CPU and never measured against them)."""
  if jax.default_backend() != "cpu":
    return upconv_reference(x_BxHxWxCin, kernel_4x4xCinxCout)
  if kernel_4x4xCinxCout.shape[-1] >= WINOGRAD_MIN_CHANNELS:
    return upconv_winograd(x_BxHxWxCin, kernel_4x4xCinxCout)
  return upconv_phase(x_BxHxWxCin, kernel_4x4xCinxCout)


IMPLEMENTATIONS: dict[str, Callable[[Array, Array], Array]] = {
    "auto": upconv_auto,
    "winograd": upconv_winograd,
    "phase": upconv_phase,
    "phase4": upconv_phase4,
    "phase_autodiff": upconv_phase_autodiff,
    "phase_im2col": upconv_phase_im2col,
    "conv_transpose": upconv_reference,
}


def get_upconv(impl: str) -> Callable[[Array, Array], Array]:
  """Returns the up-convolution function named `impl` (see IMPLEMENTATIONS)."""
  try:
    return IMPLEMENTATIONS[impl]
  except KeyError:
    raise ValueError(
        f"unknown upconv_impl {impl!r}; choose one of {sorted(IMPLEMENTATIONS)}") from None
