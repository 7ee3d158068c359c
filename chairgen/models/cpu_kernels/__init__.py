"""The generator's convolutions rewritten for XLA:CPU: what `model.kernels='auto'` runs there.

On XLA:CPU the kernel gradients of the paper's 3x3 convolutions and 4x4 stride-2
up-convolutions ran many times slower than their forward passes (jax-ml/jax#31662; measured
in docs/performance.md), and they dominate a training step. The functions here compute the
same linear maps, with the same parameters, as batched matrix products with their own
gradients:

- where `onednn.available()` (Linux x86-64 with oneDNN and a C++ compiler, one device):
  oneDNN's direct convolutions through an XLA FFI call (`onednn.py`) for every up-convolution
  and 3x3 convolution, except float32 3x3 convolutions of WINOGRAD_MIN_CONV3X3_CHANNELS inputs
  or more, and float32 on CPUs without AVX-512 (`use_onednn`); they read each map once where
  the forms below move transformed copies through memory, and with bfloat16 operands they run
  on AMX or AVX-512 bf16;
- `conv3x3`: Winograd F(4x4, 3x3) for large float32 maps, else F(2x2, 3x3) (`winograd.py`);
- `upconv`: Winograd F(2x2, 2x2) per output phase (`winograd.upconv_winograd`) for layers of at
  least WINOGRAD_MIN_CHANNELS outputs, the phase decomposition with GEMM kernel gradients
  (`phase.upconv_phase`) for the narrower ones; per layer, the faster of the two on XLA:CPU;
- `dense`: the FC layers' x · W: oneDNN's matmul for the large ones (`use_onednn`), else XLA's
  dot, with bfloat16 operands through `matmul` (`matmul.py`).

`model.dtype='bfloat16'` reaches these as `operands`: the GEMMs take bf16 inputs and sum in
float32 while activations, transforms and gradients stay float32, because XLA:CPU's bf16 GEMMs
are fast where the CPU has bf16 dot products and its bf16 element-wise code is slow
(docs/performance.md). The narrow phase-form up-convolutions stay float32: bf16 GEMMs that
narrow gained nothing there.

Everywhere else, and with `model.kernels='xla'`, the generator uses XLA's own convolutions
(cuDNN and the TPU compiler are tuned for those). Parameters are the same either way, so a
checkpoint trained with one switch loads with the other (tests/test_models.py).
"""

import jax
import jax.numpy as jnp

from chairgen.models.cpu_kernels import onednn
from chairgen.models.cpu_kernels.matmul import matmul
from chairgen.models.cpu_kernels.phase import upconv_phase
from chairgen.models.cpu_kernels import winograd
from chairgen.models.cpu_kernels.winograd import upconv_winograd

# Up-convolutions with at least this many output channels run as `upconv_winograd`, narrower
# ones as `upconv_phase` (Winograd's transforms cost more than its products save for the
# 48- and 5-channel layers of 1s-S-deep; docs/performance.md).
WINOGRAD_MIN_CHANNELS = 64


# Float32 3x3 convolutions with at least this many input channels stay Winograd where oneDNN
# is available: F(4x4)'s 4x fewer multiplications win where a layer is compute-bound (conv1,
# 256 channels at 16 px), oneDNN's single pass where it waits on memory (docs/performance.md).
# With bfloat16 operands oneDNN's AMX/AVX-512 bf16 kernels win everywhere.
WINOGRAD_MIN_CONV3X3_CHANNELS = 128


# FC layers with at least this many weights run their forward product and input gradient as
# oneDNN matmuls: FC5's (1024 x 16384) twice as fast as XLA's at batch 32, fc3 and fc4 a little
# faster, the narrow ones level (docs/performance.md).
ONEDNN_MIN_DENSE_WEIGHTS = 2**20


# Float32 layers go to oneDNN only where it runs AVX-512 (or AMX) code for all its passes:
# there it was measured faster than the JAX forms (docs/performance.md). On AVX2-only CPUs the
# JAX forms beat PyTorch's oneDNN convolutions in the docs' runs, and have not been measured
# against these, so they stay.
ONEDNN_FLOAT32_ISA = "avx512"


def use_onednn(kind: str, x, kernel, operands=None) -> bool:
  """Whether this layer ('conv3x3', 'upconv' or 'matmul') goes to oneDNN: float32 activations,
  one device (XLA cannot split the custom call over a mesh), `onednn.available()`, and oneDNN
  JIT-compiles all its passes for these operands on this CPU (bfloat16 without bf16
  instructions, for one, has only reference code, slower than the JAX forms), with
  ONEDNN_FLOAT32_ISA code for float32."""
  operands = jnp.dtype(operands or x.dtype)
  if (x.dtype != jnp.float32 or operands not in onednn.OPERANDS
      or jax.default_backend() != "cpu" or jax.device_count() != 1 or not onednn.available()):
    return False
  if operands == jnp.float32 and kind == "conv3x3" and (
      x.shape[-1] >= WINOGRAD_MIN_CONV3X3_CHANNELS):
    return False
  if kind == "matmul" and (x.ndim != 2 or kernel.size < ONEDNN_MIN_DENSE_WEIGHTS):
    return False
  if not onednn.jit_compiled(kind, x.shape, kernel.shape, operands):
    return False
  return operands != jnp.float32 or all(
      ONEDNN_FLOAT32_ISA in name
      for name in onednn.implementations(kind, x.shape, kernel.shape, operands).values())


# F(4x4, 3x3) from this input size on (float32 bytes of [B, H, W, Cin]): below it the maps stay
# in cache, where F(2x2)'s cheaper transforms win and F(4x4) only costs compile time (measured
# in docs/performance.md).
F4_MIN_INPUT_BYTES = 8 * 2**20


def conv3x3_output_tile(x_BxHxWxC, operands=None) -> int:
  """4 (F(4x4, 3x3)) for float32 GEMM inputs on maps of at least F4_MIN_INPUT_BYTES whose sides
  are multiples of 4 (the generator's always are), else 2 (F(2x2, 3x3)). F(4x4) moves 1.8x
  less data through its GEMMs, which is what a large step waits for on the CPU; with bf16
  inputs its larger transform coefficients amplify bf16's rounding ~6x
  (tests/test_winograd.py, docs/performance.md).
  """
  _, h, w, _ = x_BxHxWxC.shape
  float32 = jnp.dtype(operands or x_BxHxWxC.dtype) == jnp.float32
  large = x_BxHxWxC.size * 4 >= F4_MIN_INPUT_BYTES
  return 4 if float32 and large and h % 4 == 0 and w % 4 == 0 else 2


def conv3x3(x_BxHxWxCin, kernel_3x3xCinxCout, operands=None, onednn_allowed=True):
  """The 3x3 'SAME' convolution: oneDNN where `use_onednn`, else Winograd, F(4x4, 3x3) or
  F(2x2, 3x3) (`conv3x3_output_tile`). onednn_allowed=False: the JAX forms only."""
  if onednn_allowed and use_onednn("conv3x3", x_BxHxWxCin, kernel_3x3xCinxCout, operands):
    return onednn.conv3x3(x_BxHxWxCin, kernel_3x3xCinxCout, operands or x_BxHxWxCin.dtype)
  return winograd.conv3x3(x_BxHxWxCin, kernel_3x3xCinxCout, operands,
                          output_tile=conv3x3_output_tile(x_BxHxWxCin, operands))


def dense(x_BxDin, kernel_DinxDout, operands=None, onednn_allowed=True):
  """The FC layers' x · W for float32 x and W, summed in float32: oneDNN's matmul where
  `use_onednn` (and onednn_allowed), else XLA's dot (through `matmul` for bfloat16 operands)."""
  operands = jnp.dtype(operands or x_BxDin.dtype)
  if onednn_allowed and use_onednn("matmul", x_BxDin, kernel_DinxDout, operands):
    return onednn.matmul(x_BxDin, kernel_DinxDout, operands)
  if operands != jnp.float32:
    return matmul(x_BxDin, kernel_DinxDout, operands)
  return jnp.dot(x_BxDin, kernel_DinxDout)


def upconv(x_BxHxWxCin, kernel_4x4xCinxCout, operands=None, onednn_allowed=True):
  """The up-convolution of `chairgen.models.upconv`, the faster way for this layer's width.

  operands: the GEMM input dtype of the Winograd form (see above); default x's.
  onednn_allowed=False: the JAX forms only.
  """
  if onednn_allowed and use_onednn("upconv", x_BxHxWxCin, kernel_4x4xCinxCout, operands):
    return onednn.upconv(x_BxHxWxCin, kernel_4x4xCinxCout, operands or x_BxHxWxCin.dtype)
  if kernel_4x4xCinxCout.shape[-1] >= WINOGRAD_MIN_CHANNELS:
    return upconv_winograd(x_BxHxWxCin, kernel_4x4xCinxCout, operands)
  return upconv_phase(x_BxHxWxCin, kernel_4x4xCinxCout)


__all__ = ["F4_MIN_INPUT_BYTES", "ONEDNN_FLOAT32_ISA", "ONEDNN_MIN_DENSE_WEIGHTS",
           "WINOGRAD_MIN_CHANNELS", "WINOGRAD_MIN_CONV3X3_CHANNELS",
           "conv3x3", "conv3x3_output_tile", "dense", "matmul", "onednn", "upconv", "upconv_phase",
           "upconv_winograd", "use_onednn"]
