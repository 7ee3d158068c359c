"""Tile arithmetic shared by the Winograd convolutions and the phase up-convolutions."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

Array = jax.Array


def interleave(phases: Callable[[int, int], Array], factor: int = 2) -> Array:
  """Depth-to-space: phases(r, s) f[B, H, W, C] -> f[B, factor H, factor W, C].

  Output pixel (factor i + r, factor j + s) is phases(r, s)[i, j], for r, s < factor: how the
  phase up-convolutions assemble their output and the Winograd tiles theirs.
  """
  rows = [jnp.stack([phases(r, s) for s in range(factor)], axis=3) for r in range(factor)]
  y = jnp.stack(rows, axis=2)                     # [B, H, r, W, s, C]
  b, h, _, w, _, c = y.shape
  return y.reshape(b, factor * h, factor * w, c)


# XLA:CPU fuses a concatenation into the loops that compute its operands only if it has at most
# this many (kMaxConcatenateArguments in xla/service/cpu/cpu_instruction_fusion.cc); a longer
# one runs as a copy of its own, a further write and read of the whole result.
MAX_FUSED_CONCATENATE = 8


def stack(parts: list[Array], axis: int = 0) -> Array:
  """jnp.stack, as a stack of stacks of at most MAX_FUSED_CONCATENATE parts each.

  The same array, but XLA:CPU computes it in one loop with its parts: for the 16-36 tile
  transforms of a Winograd layer that saves a write and a read of an array 4-9x the feature
  map (docs/performance.md). Groups stack along a new axis (merged after) because XLA
  flattens a concatenation of concatenations along one axis back into one.
  """
  n = len(parts)
  group = max((d for d in range(1, MAX_FUSED_CONCATENATE + 1)
               if n % d == 0 and n // d <= MAX_FUSED_CONCATENATE), default=None)
  if group is None or group == n:
    return jnp.stack(parts, axis)
  axis = axis % (parts[0].ndim + 1)
  stacked = jnp.stack([jnp.stack(parts[i:i + group], axis) for i in range(0, n, group)], axis)
  return stacked.reshape(*stacked.shape[:axis], n, *stacked.shape[axis + 2:])


def combine(matrix: np.ndarray, parts: list[Array]) -> list[Array]:
  """[Σ_j matrix[i, j] parts[j] for each row i], skipping zeros (fuses into one loop)."""
  out = []
  for row in matrix:
    terms = [p if c == 1 else -p if c == -1 else p * float(c)
             for c, p in zip(row, parts) if c != 0]
    out.append(sum(terms[1:], terms[0]))
  return out


def shift_tiles(x: Array, shift: int, axis: int) -> Array:
  """out[t] = x[t + shift] along `axis` (tile index), zero where t + shift is outside."""
  pad = [(0, 0)] * x.ndim
  length = x.shape[axis]
  if shift > 0:
    pad[axis] = (0, shift)
    return lax.slice_in_dim(jnp.pad(x, pad), shift, shift + length, axis=axis)
  pad[axis] = (-shift, 0)
  return lax.slice_in_dim(jnp.pad(x, pad), 0, length, axis=axis)
