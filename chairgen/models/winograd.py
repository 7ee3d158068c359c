"""3x3 'SAME' stride-1 convolution by Winograd's minimal filtering F(m x m, 3x3).

Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks* (CVPR 2016): each m x m
output tile is A^T [(G g G^T) ⊙ (B^T d B)] A for the (m + 2) x (m + 2) input tile d around it,
so a layer becomes (m + 2)^2 independent matrix products [tiles, Cin] x [Cin, Cout] between
additions that XLA fuses.  F(4x4, 3x3) needs 36 products per 16 outputs (4x fewer
multiplications than the direct convolution), F(2x2, 3x3) 16 per 4 (2.25x fewer).  The
gradients are batched GEMMs too (the input gradient with U^T, the kernel gradient V^T dM): on
XLA:CPU that is what makes the difference, since XLA's own kernel-gradient convolutions ran
5-15x slower than their forward pass (docs/performance.md).  F(2x2) has its own VJP
(`_conv3x3_f2_bwd`, no scatters); F(4x4) and `autodiff=True` use autodiff's.

Exact in real arithmetic.  In float32 F(2x2) differs from `lax.conv_general_dilated` by ~1e-6
relative and F(4x4) by ~1e-5 (tests/test_winograd.py); the feature map's height and width must
be multiples of m (the generator's maps are 8 * 2**n pixels).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from chairgen.models import upconv

Array = jax.Array

# (B^T, G, A^T) of Lavin & Gray for F(m x m, 3x3), keyed by the output tile size m.
TRANSFORMS = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
        np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], np.float64)),
}
DEFAULT_TILE = 2   # F(2x2, 3x3): F(4x4)'s transforms cost more than it saves on XLA:CPU


def _combine(matrix: np.ndarray, parts: list[Array]) -> list[Array]:
  """[Σ_j matrix[i, j] parts[j] for each row i], skipping zeros (fuses into one loop)."""
  out = []
  for row in matrix:
    terms = [p if c == 1 else -p if c == -1 else p * float(c)
             for c, p in zip(row, parts) if c != 0]
    out.append(sum(terms[1:], terms[0]))
  return out


def tile_size_for(height: int, width: int, tile: int = DEFAULT_TILE) -> int:
  """The largest output tile in TRANSFORMS, at most `tile`, that divides height and width."""
  for m in sorted(TRANSFORMS, reverse=True):
    if m <= tile and height % m == 0 and width % m == 0:
      return m
  raise ValueError(f"winograd.conv3x3 needs height and width divisible by "
                   f"{min(TRANSFORMS)}, got {height}x{width}")


def transform_kernel(kernel_3x3xCinxCout: Array, m: int) -> Array:
  """U = G g G^T per (Cin, Cout): f[3, 3, Cin, Cout] -> f[(m+2)^2, Cin, Cout]."""
  g = jnp.asarray(TRANSFORMS[m][1], kernel_3x3xCinxCout.dtype)
  u = jnp.einsum("ai,ijco,bj->abco", g, kernel_3x3xCinxCout, g)
  return u.reshape(-1, *kernel_3x3xCinxCout.shape[2:])


def transform_input(x_BxHxWxC: Array, m: int) -> Array:
  """V = B^T d B for every input tile: f[B, H, W, C] -> f[(m+2)^2, B*H/m*W/m, C]."""
  b, h, w, c = x_BxHxWxC.shape
  bt = TRANSFORMS[m][0]
  n = m + 2
  x_pad = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  rows = _combine(bt, [x_pad[:, i:i + h:m] for i in range(n)])      # n x [B, H/m, W+2, C]
  v = [col for row in rows for col in _combine(bt, [row[:, :, j:j + w:m] for j in range(n)])]
  return jnp.stack(v).reshape(n * n, b * (h // m) * (w // m), c)


def untransform_output(m_TxNxC: Array, m: int, batch: int, height: int, width: int) -> Array:
  """Y = A^T M A per tile: f[(m+2)^2, B*H/m*W/m, C] -> f[B, H, W, C]."""
  at = TRANSFORMS[m][2]
  n = m + 2
  c = m_TxNxC.shape[-1]
  t = m_TxNxC.reshape(n, n, batch, height // m, width // m, c)
  rows = _combine(at, [t[i] for i in range(n)])                     # m x [n, B, H/m, W/m, C]
  tiles = [_combine(at, [r[j] for j in range(n)]) for r in rows]    # [r][s] f[B, H/m, W/m, C]
  return upconv.interleave(lambda r, s: tiles[r][s], m)


def _phases(x_BxHxWxC: Array) -> list[list[Array]]:
  """[[x[:, r::2, s::2] for s in (0, 1)] for r in (0, 1)]: each f[B, H/2, W/2, C]."""
  return [[x_BxHxWxC[:, r::2, s::2] for s in (0, 1)] for r in (0, 1)]


def _shift_tiles(x: Array, shift: int, axis: int) -> Array:
  """out[t] = x[t + shift] along `axis` (tile index), zero where t + shift is outside."""
  pad = [(0, 0)] * x.ndim
  length = x.shape[axis]
  if shift > 0:
    pad[axis] = (0, shift)
    return lax.slice_in_dim(jnp.pad(x, pad), shift, shift + length, axis=axis)
  pad[axis] = (-shift, 0)
  return lax.slice_in_dim(jnp.pad(x, pad), 0, length, axis=axis)


# Input row q = 2p + r of a 2x2-tiled map is row i of tile p + s: the (i, s) pairs for r = 0, 1
# (tile p covers input rows 2p - 1 ... 2p + 2).
_F2_INPUT_TAPS = (((1, 0), (3, -1)), ((2, 0), (0, 1)))


def _forward(x_BxHxWxCin: Array, kernel_3x3xCinxCout: Array, m: int
             ) -> tuple[Array, Array, Array]:
  """(y, V, U): the convolution and the transforms its F(2x2) VJP keeps."""
  b, h, w, _ = x_BxHxWxCin.shape
  v = transform_input(x_BxHxWxCin, m)
  u = transform_kernel(kernel_3x3xCinxCout, m)
  prod = jnp.einsum("tnc,tco->tno", v, u, preferred_element_type=jnp.float32)
  return untransform_output(prod.astype(x_BxHxWxCin.dtype), m, b, h, w), v, u


@jax.custom_vjp
def _conv3x3_f2(x_BxHxWxCin: Array, kernel_3x3xCinxCout: Array) -> Array:
  return _forward(x_BxHxWxCin, kernel_3x3xCinxCout, 2)[0]


def _conv3x3_f2_fwd(x, kernel):
  y, v, u = _forward(x, kernel, 2)
  return y, (v, u, kernel)


def _conv3x3_f2_bwd(residuals, dy_BxHxWxCout):
  """Both gradients as two batched GEMMs between elementwise transforms (no scatters).

  dM = A dY Aᵀ per tile, dV = dM Uᵀ, dU = Vᵀ dM, dK = Gᵀ dU G, and dX gathers B dV Bᵀ from
  the (up to) four tiles that overlap each input pixel, by pixel parity.
  """
  v, u, kernel = residuals
  bt, g, at = (np.asarray(m) for m in TRANSFORMS[2])
  b, h, w, c_out = dy_BxHxWxCout.shape
  dyp = _phases(dy_BxHxWxCout)                                       # [r][s] f[B, H/2, W/2, C]
  rows = [_combine(at.T, [dyp[r][s] for r in (0, 1)]) for s in (0, 1)]   # [s][a]
  dm = jnp.stack([x for a in range(4) for x in _combine(at.T, [rows[s][a] for s in (0, 1)])])
  dm = dm.reshape(16, -1, c_out)                                     # [a*4 + b, N, Cout]
  dv = jnp.einsum("tno,tco->tnc", dm, u, preferred_element_type=jnp.float32).astype(v.dtype)
  du = jnp.einsum("tnc,tno->tco", v, dm, preferred_element_type=jnp.float32)
  gm = jnp.asarray(g, jnp.float32)
  dk = jnp.einsum("ai,abco,bj->ijco", gm, du.reshape(4, 4, *du.shape[1:]), gm)
  c_in = v.shape[-1]
  dv = dv.reshape(4, 4, b, h // 2, w // 2, c_in)
  cols = [_combine(bt.T, [dv[a, bb] for a in range(4)]) for bb in range(4)]   # [b][i]
  wt = [_combine(bt.T, [cols[bb][i] for bb in range(4)]) for i in range(4)]    # [i][j]
  dx = upconv.interleave(lambda r, s: sum(
      _shift_tiles(_shift_tiles(wt[i][j], sy, 1), sx, 2)
      for i, sy in _F2_INPUT_TAPS[r] for j, sx in _F2_INPUT_TAPS[s]))
  return dx.astype(v.dtype), dk.astype(kernel.dtype)


_conv3x3_f2.defvjp(_conv3x3_f2_fwd, _conv3x3_f2_bwd)


def conv3x3(x_BxHxWxCin: Array, kernel_3x3xCinxCout: Array, tile: int = DEFAULT_TILE,
            autodiff: bool = False) -> Array:
  """'SAME' 3x3 convolution, stride 1 (NHWC, HWIO): f[B, H, W, Cout].

  tile: the largest output tile m to use (4 or 2); smaller maps fall back to what divides them.
  autodiff: F(2x2) with autodiff's gradients instead of `_conv3x3_f2_bwd` (for comparisons;
    F(4x4) always uses autodiff's).
  """
  if x_BxHxWxCin.ndim != 4 or kernel_3x3xCinxCout.shape[:2] != (3, 3):
    raise ValueError(f"winograd.conv3x3 takes x [B, H, W, C] and a [3, 3, Cin, Cout] kernel, "
                     f"got {x_BxHxWxCin.shape} and {kernel_3x3xCinxCout.shape}")
  _, h, w, c_in = x_BxHxWxCin.shape
  if kernel_3x3xCinxCout.shape[2] != c_in:
    raise ValueError(f"kernel expects {kernel_3x3xCinxCout.shape[2]} input channels, "
                     f"input has {c_in}")
  m = tile_size_for(h, w, tile)
  if m == 2 and not autodiff:
    return _conv3x3_f2(x_BxHxWxCin, kernel_3x3xCinxCout)
  return _forward(x_BxHxWxCin, kernel_3x3xCinxCout, m)[0]
