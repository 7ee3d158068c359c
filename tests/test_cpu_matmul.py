"""cpu_kernels.matmul: x · W with bf16 operands, float32 sums, and its own gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chairgen.models import cpu_kernels


def test_value_and_gradients_close_to_float32_with_bf16_products():
  kx, kw, kc = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (8, 64))
  w = jax.random.normal(kw, (64, 32)) / 8
  cotangent = jax.random.normal(kc, (8, 32))
  y, vjp = jax.vjp(lambda x, w: cpu_kernels.matmul(x, w, "bfloat16"), x, w)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, x @ w, rtol=0.02, atol=0.05)
  dx, dw = vjp(cotangent)
  assert dx.dtype == dw.dtype == jnp.float32
  np.testing.assert_allclose(dx, cotangent @ w.T, rtol=0.02, atol=0.1)
  np.testing.assert_allclose(dw, x.T @ cotangent, rtol=0.02, atol=0.1)
  # In float32 it is the plain product.
  np.testing.assert_allclose(cpu_kernels.matmul(x, w, "float32"), x @ w, rtol=1e-6)


def test_every_product_takes_bf16_operands():
  x, w = jnp.ones((4, 16)), jnp.ones((16, 8))
  grad = jax.grad(lambda x, w: jnp.sum(cpu_kernels.matmul(x, w, "bfloat16") ** 2), (0, 1))
  jaxpr = jax.make_jaxpr(grad)(x, w)
  dots = []

  def walk(j):
    for eqn in j.eqns:
      if eqn.primitive.name == "dot_general":
        dots.append(tuple(str(v.aval.dtype) for v in (*eqn.invars, *eqn.outvars)))
      for sub in jax.core.jaxprs_in_params(eqn.params):
        walk(sub)

  walk(jaxpr.jaxpr)
  assert len(dots) == 3 and set(dots) == {("bfloat16", "bfloat16", "float32")}, dots


def test_rejects_non_float32_inputs():
  with pytest.raises(ValueError, match="float32 x and w"):
    cpu_kernels.matmul(jnp.ones((2, 3), jnp.bfloat16), jnp.ones((3, 4)), "bfloat16")
