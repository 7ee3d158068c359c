"""Convolutions by Winograd's minimal filtering: F(2x2, 3x3), F(4x4, 3x3) and the
up-convolution's F(2x2, 2x2).

Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks* (CVPR 2016): each m x m
output tile is A^T [(G g G^T) ⊙ (B^T d B)] A for the (m + 2) x (m + 2) input tile d around it,
so a layer becomes (m + 2)^2 independent matrix products [tiles, Cin] x [Cin, Cout] between
additions that XLA fuses: F(2x2, 3x3) needs 16 products per 4 outputs (2.25x fewer
multiplications than the direct convolution), F(4x4, 3x3) 36 per 16 (4x fewer). On XLA:CPU
the step waits mostly for memory, and the transformed tiles the GEMMs read and write are
(m + 2)^2 / m^2 times the feature maps: 4x for F(2x2), 2.25x for F(4x4), which is why float32
takes F(4x4) (`cpu_kernels.conv3x3`; its larger coefficients cost bf16 too much accuracy).
The gradients are batched GEMMs too (the input gradient with U^T, the kernel gradient V^T dM):
on XLA:CPU that is what makes the difference, since XLA's own kernel-gradient convolutions are
much slower than their forward pass there.

The 4x4 stride-2 up-convolution is, per output phase, a 2x2 convolution (`upconv.py`); F(2, 2)
computes two outputs of a 2-tap filter with 3 products instead of 4.  Over the same 4x4 input
tiles as F(2x2, 3x3) (rows 2p - 1 ... 2p + 2), phase 0 reads rows 0-2 and phase 1 rows 1-3,
so one 6 x 4 B^T (both phases' F(2, 2) input transforms) gives the 36 products of the four
phases, which make a 4x4 output tile: 2.25 products per output pixel instead of 4.

All forms share one VJP (`tiled_products`, no scatters).  Exact in real arithmetic; in float32
they differ from XLA's convolutions by rounding (tests/test_winograd.py).  The feature map's
height and width must be multiples of the output tile's stride (2, or 4 for F(4x4); the
generator's maps are 8 * 2**n pixels).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from chairgen.models.cpu_kernels import phase
from chairgen.models.cpu_kernels import tiles
from chairgen.models.upconv import check_shapes

Array = jax.Array

# (B^T, G, A^T) of Lavin & Gray for F(2x2, 3x3).
F2_3 = (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64))


# (B^T, G, A^T) of Lavin & Gray for F(4x4, 3x3): 36 products per 16 outputs, 6x6 tiles at
# stride 4, so the transformed tiles are 2.25x the feature map instead of F(2x2)'s 4x.
F4_3 = (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], np.float64))


# F(2, 2) for the up-convolution's 2-tap phase filters: y0 = m0 + m1, y1 = m1 + m2, with
# m = (G g) ⊙ (B^T d) for inputs d0..d2.
F2_2 = (np.array([[1, -1, 0], [0, 1, 0], [0, -1, 1]], np.float64),
        np.array([[1, 0], [1, 1], [0, 1]], np.float64),
        np.array([[1, 1, 0], [0, 1, 1]], np.float64))


def _upconv_tile_transforms() -> tuple[np.ndarray, np.ndarray]:
  """(B^T 6x4, A^T 4x6): both phases' F(2, 2) over a 4-row input tile, 4 output rows."""
  bt2, _, at2 = F2_2
  bt = np.zeros((6, 4))
  bt[0:3, 0:3] = bt2              # phase 0: tile rows 0-2
  bt[3:6, 1:4] = bt2              # phase 1: tile rows 1-3
  at = np.zeros((4, 6))
  for a in range(2):              # output row 2a + r of the tile is phase r's output a
    for r in range(2):
      at[2 * a + r, 3 * r:3 * r + 3] = at2[a]
  return bt, at


# (B^T, A^T, stride) of the layers whose products `tiled_products` computes: the input tiles
# are B^T's width on a side, at `stride` in the 1-padded input; the output tile is len(A^T)
# pixels on a side.
_CONV3X3_FORMS = {"conv3x3_f2": F2_3, "conv3x3_f4": F4_3}     # (B^T, G, A^T); stride len(A^T)
TILE_TRANSFORMS = {
    **{name: (bt, at, len(at)) for name, (bt, _, at) in _CONV3X3_FORMS.items()},
    "upconv_f2": (*_upconv_tile_transforms(), 2),
}


def transform_kernel(kernel_3x3xCinxCout: Array, transform: str = "conv3x3_f2") -> Array:
  """U = G g G^T per (Cin, Cout): f[3, 3, Cin, Cout] -> f[len(G)**2, Cin, Cout].

  As sums of the kernel's taps (`_both_axes`), which XLA fuses into one loop: as an einsum,
  XLA:CPU ran it as skinny GEMMs ([Cin·Cout·3, 3] x [3, 4]) at several ms each, per step.
  """
  g = _CONV3X3_FORMS[transform][1]
  u = _both_axes(g, lambda i, j: kernel_3x3xCinxCout[i, j])              # [a][b] f[Cin, Cout]
  return jnp.stack([x for row in u for x in row])


def transform_upconv_kernel(phase_kernels: Array) -> Array:
  """U of the four phases: f[ry, rx, 2, 2, Cin, Cout] -> f[36, Cin, Cout], in B^T's order.

  Product (3 ry + i, 3 rx + j) of a tile is V[3 ry + i, 3 rx + j] U[ry, rx][i, j] (sums of
  taps, as in `transform_kernel`).
  """
  g = F2_2[1]
  u = [[_both_axes(g, lambda a, b, ry=ry, rx=rx: phase_kernels[ry, rx, a, b])
        for rx in range(2)] for ry in range(2)]                        # [ry][rx][i][j]
  return jnp.stack([u[ry][rx][i][j] for ry in range(2) for i in range(3)
                    for rx in range(2) for j in range(3)])


def tile_transforms(x_BxHxWxC: Array, bt: np.ndarray, step: int, dtype) -> list[Array]:
  """B^T d B for every tile d of the 1-padded input at `step`, one array per position in the
  transformed tile: len(bt)**2 x f[B, H/step, W/step, C], in `dtype`.
  """
  _, h, w, _ = x_BxHxWxC.shape
  n = bt.shape[1]
  x_pad = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  rows = tiles.combine(bt, [x_pad[:, i:i + h:step] for i in range(n)])   # [B, H/step, W+2, C]
  return [col.astype(dtype) for row in rows
          for col in tiles.combine(bt, [row[:, :, j:j + w:step] for j in range(n)])]


def _stack_tiles(parts: list[Array]) -> Array:
  """V f[T, N, C] from `tile_transforms`' parts (N = B * tiles high * tiles wide)."""
  return tiles.stack(parts).reshape(len(parts), -1, parts[0].shape[-1])


def _stack_tiles_transposed(parts: list[Array]) -> Array:
  """Vᵀ f[T, C, N], stacked from transposed parts: not a transpose of V, which XLA would fold
  back into the product that reads it."""
  return tiles.stack([jnp.moveaxis(x, -1, 0).reshape(x.shape[-1], -1) for x in parts])


def _both_axes(matrix: np.ndarray, part: Callable[[int, int], Array]) -> list[list[Array]]:
  """out[p][q] = Σ_{i,j} matrix[p, i] matrix[q, j] part(i, j): M X Mᵀ for every tile."""
  n = matrix.shape[1]
  cols = [tiles.combine(matrix, [part(i, j) for i in range(n)]) for j in range(n)]   # [j][p]
  return [tiles.combine(matrix, [cols[j][p] for j in range(n)]) for p in range(len(matrix))]


def output_tiles(m_TxNxC: Array, at: np.ndarray, batch: int, tiles_h: int, tiles_w: int
                 ) -> Array:
  """Y = A^T M A per tile: f[T, N, C] -> f[B, len(A^T) tiles_h, len(A^T) tiles_w, C]."""
  n = at.shape[1]
  t = m_TxNxC.reshape(n, n, batch, tiles_h, tiles_w, m_TxNxC.shape[-1])
  out = _both_axes(at, lambda i, j: t[i, j])                            # [r][s] f[B, th, tw, C]
  return tiles.interleave(lambda r, s: out[r][s], len(at))


def _products(x: Array, u: Array, bt: np.ndarray, at: np.ndarray, step: int, operands
              ) -> tuple[Array, Array]:
  """(y, what dU = Vᵀ dM reads): the tiled products of x with the transformed kernel u.

  V and U enter the GEMMs in the `operands` dtype (default x's) and sum in float32. For the
  VJP: V itself in float32, Vᵀ in bf16. XLA:CPU's GEMM library multiplies bf16 only along the
  operands' last axis; given V, whose tile axis is not last, XLA converts V and dM to float32
  for dU (two more passes and a float32 GEMM), while Vᵀ keeps it bf16: 5x faster for the
  wide layers (docs/performance.md). In float32 the product is as fast either way.
  """
  b, h, w, _ = x.shape
  operands = jnp.dtype(operands or x.dtype)
  parts = tile_transforms(x, bt, step, operands)
  v = _stack_tiles(parts)
  prod = jnp.einsum("tnc,tco->tno", v, u.astype(operands), preferred_element_type=jnp.float32)
  y = output_tiles(prod.astype(x.dtype), at, b, h // step, w // step)
  # _tiled_products_bwd picks its dU product by the same rule.
  return y, (v if operands == jnp.float32 else _stack_tiles_transposed(parts))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def tiled_products(x_BxHxWxCin: Array, u_TxCinxCout: Array, transform: str,
                   operands: str | None = None) -> Array:
  """Y = A^T [U ⊙ (B^T d B)] A over the 4x4, stride-2 tiles d of x (TILE_TRANSFORMS[transform]).

  x f[B, H, W, Cin] with H, W even, u f[T, Cin, Cout] -> f[B, H/2 len(A^T), W/2 len(A^T), Cout].
  operands: the dtype of the GEMMs' inputs (default x's): 'bfloat16' with float32 x and u
  multiplies bf16 matrices into float32 sums while the transforms, the output and the gradients
  stay float32 (XLA:CPU's bf16 element-wise code is slow, its bf16 GEMMs fast; docs/models.md).
  """
  bt, at, stride = TILE_TRANSFORMS[transform]
  return _products(x_BxHxWxCin, u_TxCinxCout, bt, at, stride, operands)[0]


def _tiled_products_fwd(x, u, transform, operands):
  bt, at, stride = TILE_TRANSFORMS[transform]
  y, v_or_vt = _products(x, u, bt, at, stride, operands)
  return y, (v_or_vt, u)


def _input_taps(tile: int, stride: int) -> list[list[tuple[int, int]]]:
  """For input row q = stride p + r: the (i, s) with q row i of tile p + s, for each r.

  Tile p covers input rows stride p - 1 ... stride p + tile - 2 (the input is 1-padded).
  """
  return [[(r + 1 - stride * s, s) for s in (-1, 0, 1) if 0 <= r + 1 - stride * s < tile]
          for r in range(stride)]


def _tiled_products_bwd(transform, operands, residuals, dy):
  """Both gradients as two batched GEMMs between elementwise transforms (no scatters).

  dM = A dY Aᵀ per tile, dV = dM Uᵀ, dU = Vᵀ dM, and dX gathers B dV Bᵀ from the (up to)
  four tiles that overlap each input pixel, by the pixel's position within the tile stride.
  """
  bt, at, stride = TILE_TRANSFORMS[transform]
  v_or_vt, u = residuals
  op_dtype = jnp.dtype(operands or dy.dtype)   # y, so dy, has x's dtype
  f, n = at.shape
  b, out_h, out_w, c_out = dy.shape
  dm = _both_axes(at.T, lambda r, s: dy[:, r::f, s::f])                 # [i][j] f[B, th, tw, C]
  dm = tiles.stack([x.astype(op_dtype) for row in dm for x in row]).reshape(n * n, -1, c_out)
  dv = jnp.einsum("tno,tco->tnc", dm, u.astype(op_dtype), preferred_element_type=jnp.float32)
  grad_product = "tnc,tno->tco" if op_dtype == jnp.float32 else "tcn,tno->tco"   # see _products
  du = jnp.einsum(grad_product, v_or_vt, dm, preferred_element_type=jnp.float32).astype(u.dtype)
  c_in = u.shape[1]
  dv = dv.astype(dy.dtype).reshape(n, n, b, out_h // f, out_w // f, c_in)
  wt = _both_axes(bt.T, lambda i, j: dv[i, j])                          # [q][q'] f[B, th, tw, C]
  taps = _input_taps(bt.shape[1], stride)
  dx = tiles.interleave(lambda r, s: sum(
      tiles.shift_tiles(tiles.shift_tiles(wt[i][j], sy, 1), sx, 2)
      for i, sy in taps[r] for j, sx in taps[s]), stride)
  return dx.astype(dy.dtype), du


tiled_products.defvjp(_tiled_products_fwd, _tiled_products_bwd)


def conv3x3(x_BxHxWxCin: Array, kernel_3x3xCinxCout: Array, operands: str | None = None,
            output_tile: int = 2) -> Array:
  """'SAME' 3x3 convolution, stride 1 (NHWC, HWIO), as F(m x m, 3x3): f[B, H, W, Cout].

  operands: dtype of the GEMMs' inputs (see `tiled_products`); default x's.
  output_tile: m, 2 or 4; H and W must be multiples of it. F(4x4) multiplies 1.8x less and
  moves 1.8x less data through its GEMMs than F(2x2), at a little more rounding.
  """
  if x_BxHxWxCin.ndim != 4 or kernel_3x3xCinxCout.shape[:2] != (3, 3):
    raise ValueError(f"winograd.conv3x3 takes x [B, H, W, C] and a [3, 3, Cin, Cout] kernel, "
                     f"got {x_BxHxWxCin.shape} and {kernel_3x3xCinxCout.shape}")
  _, h, w, c_in = x_BxHxWxCin.shape
  if kernel_3x3xCinxCout.shape[2] != c_in:
    raise ValueError(f"kernel expects {kernel_3x3xCinxCout.shape[2]} input channels, "
                     f"input has {c_in}")
  if output_tile not in (2, 4):
    raise ValueError(f"winograd.conv3x3: output_tile must be 2 or 4, got {output_tile}")
  if h % output_tile or w % output_tile:
    raise ValueError(f"winograd.conv3x3 with {output_tile}x{output_tile} output tiles needs a "
                     f"height and width divisible by {output_tile}, got {h}x{w}")
  transform = f"conv3x3_f{output_tile}"
  return tiled_products(x_BxHxWxCin, transform_kernel(kernel_3x3xCinxCout, transform),
                        transform, operands)


def upconv_winograd(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array,
                    operands: str | None = None) -> Array:
  """Up-convolution as Winograd F(2x2, 2x2) per output phase: f[B, 2H, 2W, Cout].

  36 batched GEMMs [B·H/2·W/2, Cin] x [Cin, Cout] per 4x4 output tile (2.25 products per
  output pixel where `upconv_phase` has 4), gradients as batched GEMMs too
  (`winograd.tiled_products`, whose `operands` this passes on).  Odd-sized inputs fall back
  to `upconv_phase` (in x's dtype).
  """
  check_shapes(x_BxHxWxCin, kernel_4x4xCinxCout)
  _, h, w, _ = x_BxHxWxCin.shape
  if h % 2 or w % 2:
    return phase.upconv_phase(x_BxHxWxCin, kernel_4x4xCinxCout)
  u = transform_upconv_kernel(phase.phase_kernels(kernel_4x4xCinxCout))
  return tiled_products(x_BxHxWxCin, u, "upconv_f2", operands)
