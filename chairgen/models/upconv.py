"""The 4x4, stride-2 up-convolution of section 3.1 ("bed of nails" upsampling + convolution).

Both implementations below compute the same linear map with the same kernel
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
  `python -m chairgen.models.upconv_benchmark` and docs/models.md for which is faster.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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


def _interleave(phases: Callable[[int, int], Array]) -> Array:
  """Depth-to-space: phases(ry, rx) -> [B, H, W, C] becomes [B, 2H, 2W, C]."""
  rows = [jnp.stack([phases(ry, 0), phases(ry, 1)], axis=3) for ry in (0, 1)]
  y = jnp.stack(rows, axis=2)                     # [B, H, ry, W, rx, C]
  b, h, _, w, _, c = y.shape
  return y.reshape(b, 2 * h, 2 * w, c)


def upconv_phase(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array) -> Array:
  """Up-convolution as one 2x2 convolution with 4 * Cout channels: f[B, 2H, 2W, Cout]."""
  _check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
  _, h, w, _ = x_BxHxWxCin.shape
  c_in, c_out = kernel_4x4xCinxCout.shape[2:]
  k = _phase_kernels(kernel_4x4xCinxCout)         # [ry, rx, a, b, Cin, Cout]
  k = jnp.transpose(k, (2, 3, 4, 0, 1, 5)).reshape(2, 2, c_in, 4 * c_out)
  x_pad = jnp.pad(x_BxHxWxCin, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = lax.conv_general_dilated(
      x_pad, k, window_strides=(1, 1), padding="VALID",
      dimension_numbers=_DIMENSION_NUMBERS)       # [B, H+1, W+1, 4*Cout]
  y = y.reshape(*y.shape[:3], 2, 2, c_out)
  # Phase r reads the window starting at padded position m + r.
  return _interleave(lambda ry, rx: y[:, ry:ry + h, rx:rx + w, ry, rx])


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

  return _interleave(phase)


IMPLEMENTATIONS: dict[str, Callable[[Array, Array], Array]] = {
    "phase": upconv_phase,
    "phase4": upconv_phase4,
    "conv_transpose": upconv_reference,
}


def get_upconv(impl: str) -> Callable[[Array, Array], Array]:
  """Returns the up-convolution function named `impl` (see IMPLEMENTATIONS)."""
  try:
    return IMPLEMENTATIONS[impl]
  except KeyError:
    raise ValueError(
        f"unknown upconv_impl {impl!r}; choose one of {sorted(IMPLEMENTATIONS)}") from None
