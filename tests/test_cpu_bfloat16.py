"""model.dtype='bfloat16' on the CPU: bf16 GEMM operands, float32 sums, activations, gradients.

XLA:CPU multiplies bf16 matrices into float32 fast where the CPU has bf16 dot products and runs
bf16 element-wise code slowly (docs/performance.md), so `cpu_kernels` cast only the products'
operands. These tests check the numbers stay close to float32 and that every product the
forward and backward passes run really takes bf16 operands.
"""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from chairgen import augment
from chairgen import models
from chairgen.models import cpu_kernels
from chairgen.models.cpu_kernels import winograd


def dot_dtypes(fn, *args) -> list[tuple[str, str, str]]:
  """(lhs, rhs, out) dtypes of every product that tracing fn(*args) emits, nested included:
  dot_generals, and oneDNN's convolutions and matmuls (`cpu_kernels.onednn`'s FFI calls)."""
  found = []

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      target = eqn.params.get("target_name") if eqn.primitive.name == "ffi_call" else None
      if eqn.primitive.name == "dot_general" or target in (cpu_kernels.onednn.TARGET,
                                                           cpu_kernels.onednn.MATMUL_TARGET):
        found.append(tuple(str(v.aval.dtype) for v in (*eqn.invars, *eqn.outvars)))
      elif target == cpu_kernels.onednn.GRADIENTS_TARGET:   # x, kernel, dy -> dx, dkernel
        x, kernel, dy, dx, dkernel = (str(v.aval.dtype) for v in (*eqn.invars, *eqn.outvars))
        found.extend([(dy, kernel, dx), (x, dy, dkernel)])
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        walk(sub)

  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return found


BF16_PRODUCT = ("bfloat16", "bfloat16", "float32")


def xla_conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_winograd_with_bf16_operands_keeps_float32_output_and_gradients():
  kx, kk, kw = jax.random.split(jax.random.key(11), 3)
  x = jax.random.normal(kx, (2, 8, 8, 8))
  kernel = jax.random.normal(kk, (3, 3, 8, 6)) / np.sqrt(72)
  weights = jax.random.normal(kw, (2, 8, 8, 6))

  def loss(fn):
    return lambda x, k: jnp.sum(weights * jnp.tanh(fn(x, k)))

  conv = lambda x, k: winograd.conv3x3(x, k, operands="bfloat16")  # noqa: E731
  y = jax.jit(conv)(x, kernel)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, xla_conv(x, kernel), rtol=0.03, atol=0.05)
  got = jax.jit(jax.grad(loss(conv), argnums=(0, 1)))(x, kernel)
  want = jax.grad(loss(xla_conv), argnums=(0, 1))(x, kernel)
  for g, w in zip(got, want):
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, w, rtol=0.05, atol=0.05 * float(jnp.abs(w).max()))
  dots = dot_dtypes(jax.grad(loss(conv), argnums=(0, 1)), x, kernel)
  assert dots == [BF16_PRODUCT] * 3, dots   # the GEMMs: forward, dV, dU
  # float32 operands (the default) multiply in float32.
  dots = dot_dtypes(jax.grad(loss(winograd.conv3x3), argnums=(0, 1)), x, kernel)
  assert set(dots) == {("float32",) * 3}, dots


def test_matmul_with_bf16_operands_and_its_gradients():
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
  grad = jax.grad(lambda x, w: jnp.sum(cpu_kernels.matmul(x, w, "bfloat16") ** 2), (0, 1))
  assert dot_dtypes(grad, x, w) == [BF16_PRODUCT] * 3
  np.testing.assert_allclose(cpu_kernels.matmul(x, w, "float32"), x @ w, rtol=1e-6)


def test_matmul_rejects_non_float32_inputs():
  with pytest.raises(ValueError, match="float32 x and w"):
    cpu_kernels.matmul(jnp.ones((2, 3), jnp.bfloat16), jnp.ones((3, 4)), "bfloat16")


def test_bfloat16_generator_on_the_cpu_multiplies_bf16_and_keeps_float32_activations():
  config = models.default_config()
  config.name, config.width_multiplier, config.dtype = "1s-S-deep", 0.25, "bfloat16"
  model = models.create_model(config, num_styles=5, image_size=32)
  if jax.default_backend() != "cpu":
    pytest.skip("the bf16-products policy is the CPU path's (kernels='auto' on the CPU)")
  assert model.kernels == "auto"
  style = jax.nn.one_hot(jnp.arange(2) % 5, 5)
  view = jnp.tile(jnp.array([[0.0, 1.0, 0.5, 0.8660254]]), (2, 1))
  theta = augment.identity_theta(2)
  params = model.init(jax.random.key(0), style, view, theta)["params"]
  _, activations = model.apply({"params": params}, style, view, theta,
                               capture_intermediates=True, mutable=["intermediates"])
  dtypes = {str(a.dtype) for a in jax.tree.leaves(activations)}
  assert dtypes == {"float32"}, dtypes

  def loss(p):
    return jnp.mean(model.apply({"params": p}, style, view, theta)["rgb"] ** 2)

  dots = dot_dtypes(jax.grad(loss), params)
  # FC layers and Winograd (or oneDNN) layers multiply in bf16; no product rounds its output
  # to bf16.
  assert dots.count(BF16_PRODUCT) >= 3 * 9, dots
  assert all(out == "float32" for *_, out in dots), dots
