"""x · W with the operands in another dtype and float32 sums, gradients included.

For `model.dtype='bfloat16'` on the CPU: XLA:CPU multiplies bf16 matrices into float32 several
times faster than float32 ones where the CPU has bf16 dot products (avx512_bf16, AMX), but it
runs bf16 element-wise code slowly and multiplies bf16 into bf16 slowly (docs/performance.md).
So the FC layers keep float32 activations and cast only the operands, here and in the
backward pass too: autodiff of `jnp.dot(x.astype(bf16), w.astype(bf16),
preferred_element_type=float32)` would multiply the float32 cotangent by the bf16 weights,
which XLA does in float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array


def _dot(a: Array, b: Array) -> Array:
  return jnp.dot(a, b, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul(x_BxDin: Array, w_DinxDout: Array, operands: str) -> Array:
  """x · w for float32 x and w, cast to `operands` and summed in float32: f32[B, Dout]."""
  if x_BxDin.dtype != jnp.float32 or w_DinxDout.dtype != jnp.float32:
    raise ValueError(f"matmul takes float32 x and w (it casts them to {operands} itself), "
                     f"got {x_BxDin.dtype} and {w_DinxDout.dtype}")
  return _dot(x_BxDin.astype(operands), w_DinxDout.astype(operands))


def _matmul_fwd(x, w, operands):
  xo, wo = x.astype(operands), w.astype(operands)
  return _dot(xo, wo), (xo, wo)


def _matmul_bwd(operands, residuals, dy):
  xo, wo = residuals
  dyo = dy.astype(operands)
  return _dot(dyo, wo.T), _dot(xo.T, dyo)


matmul.defvjp(_matmul_fwd, _matmul_bwd)
