"""The 4x4, stride-2 up-convolution of section 3.1 ("bed of nails" upsampling + convolution).

    y = correlate(bed_of_nails(x), kernel, padding=2 on every side)

where `bed_of_nails` puts x[i, j] at (2i, 2j) and zeros elsewhere, with the kernel
`kernel_4x4xCinxCout` in layout HWIO.  The output is exactly twice the input size, as Caffe's
Deconvolution layer with kernel 4, stride 2, pad 1 (which is the gradient of a stride-2
convolution; its weights are this kernel flipped in both spatial axes).

`upconv_reference` computes it with XLA's own `lax.conv_transpose` (what
`flax.linen.ConvTranspose` with `padding='SAME'` computes): `model.kernels='xla'` everywhere,
and what 'auto' runs on GPUs and TPUs.  On the CPU 'auto' runs the same function as GEMMs
(`chairgen.models.cpu_kernels`); all share this kernel, so checkpoints are interchangeable.
"""

from __future__ import annotations

import jax
from jax import lax
import numpy as np

Array = jax.Array

KERNEL_SIZE = 4
STRIDE = 2
# Padding of the bed-of-nails input on each side: (2, 2) is what lax.conv_transpose calls
# 'SAME' for kernel 4, stride 2, and gives an output of exactly 2x the input size.
PAD = ((2, 2), (2, 2))
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
# Kernel taps used by output phase r (0: even rows/columns, 1: odd), in input order.
PHASE_TAPS = np.array([[0, 2], [1, 3]])


def check_shapes(x_BxHxWxCin: Array, kernel: Array) -> None:
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
  check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
  return lax.conv_transpose(
      x_BxHxWxCin, kernel_4x4xCinxCout, strides=(STRIDE, STRIDE), padding=PAD,
      dimension_numbers=DIMENSION_NUMBERS, transpose_kernel=False)
