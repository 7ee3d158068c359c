"""Winograd's F(2x2, 3x3) and F(4x4, 3x3) equal XLA's 3x3 'SAME' convolution, with gradients."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from chairgen.models import cpu_kernels
from chairgen.models.cpu_kernels import tiles
from chairgen.models.cpu_kernels import winograd


def xla_conv(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _random(batch, height, width, c_in, c_out, seed):
  kx, kk = jax.random.split(jax.random.key(seed))
  return (jax.random.normal(kx, (batch, height, width, c_in)),
          jax.random.normal(kk, (3, 3, c_in, c_out)) / np.sqrt(9 * c_in))


SHAPES = [(1, 4, 4, 1, 1), (2, 8, 8, 3, 5), (2, 4, 12, 6, 4)]
# F(4x4)'s transforms have larger coefficients (up to 8 and 1/24), so more rounding in float32;
# a wrong transform or tile shift is off by O(1), far outside either tolerance.
ATOL = {2: 1e-4, 4: 1e-3}


@pytest.mark.parametrize("output_tile", [2, 4])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradients_equal_xla(shape, output_tile):
  x, kernel = _random(*shape, seed=sum(shape))
  weights = jax.random.normal(jax.random.key(1), shape[:3] + (shape[4],))
  conv = lambda x, k: winograd.conv3x3(x, k, output_tile=output_tile)  # noqa: E731
  tol = dict(rtol=1e-4, atol=ATOL[output_tile])

  def loss(fn):
    return lambda x, k: jnp.sum(weights * jnp.tanh(fn(x, k)))

  np.testing.assert_allclose(jax.jit(conv)(x, kernel), xla_conv(x, kernel), **tol)
  got = jax.jit(jax.grad(loss(conv), argnums=(0, 1)))(x, kernel)
  want = jax.jit(jax.grad(loss(xla_conv), argnums=(0, 1)))(x, kernel)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("output_tile", [2, 4])
def test_known_kernel_shifts_and_sums(output_tile):
  """A kernel with one tap at (0, 0) reads the pixel up-left: y[i, j] = x[i-1, j-1]."""
  x = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8, 1)
  kernel = jnp.zeros((3, 3, 1, 1)).at[0, 0].set(1.0)
  y = winograd.conv3x3(x, kernel, output_tile=output_tile)
  np.testing.assert_allclose(y[:, 1:, 1:], x[:, :-1, :-1], atol=1e-3)
  np.testing.assert_allclose(y[:, 0], 0.0, atol=1e-3)
  box = winograd.conv3x3(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)),
                         output_tile=output_tile)[0, ..., 0]
  np.testing.assert_allclose(box, [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]],
                             atol=1e-5 * output_tile ** 2)


@pytest.mark.parametrize("output_tile", [2, 4])
def test_custom_vjp_matches_xla_gradients_on_a_wide_map(output_tile):
  """The VJP's tile shifts at the map borders: compare with XLA's, 16x24 map."""
  x, kernel = _random(2, 16, 24, 7, 9, seed=3)
  cotangent = jax.random.normal(jax.random.key(4), (2, 16, 24, 9))
  _, vjp = jax.vjp(lambda x, k: winograd.conv3x3(x, k, output_tile=output_tile), x, kernel)
  _, vjp_xla = jax.vjp(xla_conv, x, kernel)
  for g, w in zip(vjp(cotangent), vjp_xla(cotangent)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=ATOL[output_tile])


def test_cpu_kernels_take_f4_for_large_float32_maps_and_f2_otherwise(monkeypatch):
  """F(4x4) where it pays and is exact enough: float32 GEMM inputs, sides multiples of 4, at
  least F4_MIN_INPUT_BYTES of input (traced only, nothing computed)."""
  tiles_used = []
  conv3x3 = winograd.conv3x3

  def recording(x, kernel, operands=None, output_tile=2):
    tiles_used.append(output_tile)
    return conv3x3(x, kernel, operands, output_tile)

  monkeypatch.setattr(winograd, "conv3x3", recording)
  channels = 64
  side = int(np.ceil(np.sqrt(cpu_kernels.F4_MIN_INPUT_BYTES / 4 / channels / 4))) // 4 * 4 + 4
  large = jax.ShapeDtypeStruct((4, side, side, channels), jnp.float32)
  kernel = jax.ShapeDtypeStruct((3, 3, channels, channels), jnp.float32)
  for x, operands in ((large, None),
                      (jax.ShapeDtypeStruct((4, side + 2, side + 2, channels), jnp.float32), None),
                      (large, "bfloat16"),
                      (jax.ShapeDtypeStruct((1, 8, 8, channels), jnp.float32), None)):
    jax.eval_shape(lambda x, k, o=operands: cpu_kernels.conv3x3(x, k, operands=o,
                                                                onednn_allowed=False), x, kernel)
  assert tiles_used == [4, 2, 2, 2]


def test_f4_with_bf16_operands_would_lose_accuracy():
  """Why bf16 products keep F(2x2): F(4x4)'s transforms amplify bf16 rounding (here ~2.5 %
  relative error against F(2x2)'s ~0.4 %, on random data)."""
  x, kernel = _random(2, 16, 16, 32, 32, seed=5)
  want = xla_conv(x, kernel)

  def error(tile):
    got = winograd.conv3x3(x, kernel, "bfloat16", output_tile=tile)
    return float(jnp.linalg.norm(got - want) / jnp.linalg.norm(want))

  assert error(2) < 0.01 < error(4)


def test_bfloat16_close_to_float32():
  x, kernel = _random(2, 8, 8, 8, 4, seed=9)
  got = winograd.conv3x3(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(got.astype(jnp.float32), xla_conv(x, kernel), rtol=0.05, atol=0.1)


def test_bad_shapes_raise():
  x, kernel = _random(1, 8, 8, 3, 2, seed=0)
  with pytest.raises(ValueError, match="input channels"):
    winograd.conv3x3(x[..., :2], kernel)
  with pytest.raises(ValueError, match="divisible by 2"):
    winograd.conv3x3(x[:, :7], kernel)
  with pytest.raises(ValueError, match="divisible by 4"):
    winograd.conv3x3(x[:, :6], kernel, output_tile=4)
  with pytest.raises(ValueError, match="output_tile must be 2 or 4"):
    winograd.conv3x3(x, kernel, output_tile=3)
  with pytest.raises(ValueError, match="3, 3, Cin, Cout"):
    winograd.conv3x3(x, jnp.zeros((5, 5, 3, 2)))


@pytest.mark.parametrize("count", [4, 16, 36])
def test_tiles_stack_equals_jnp_stack_and_fuses_on_the_cpu(count):
  """tiles.stack is jnp.stack in value; on XLA:CPU its parts and the stack compile into loop
  fusions with no concatenate left on its own (a 16-part jnp.stack stays one)."""
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
  parts = lambda x: [x * float(i) + jnp.roll(x, i, axis=1) for i in range(count)]  # noqa: E731
  for axis in (0, 2, -1):
    np.testing.assert_array_equal(tiles.stack(parts(x), axis), jnp.stack(parts(x), axis))
  if jax.default_backend() != "cpu":
    return

  def unfused_concatenates(fn):
    hlo = jax.jit(fn).lower(x).compile().as_text()
    entry = hlo[hlo.index("\nENTRY"):].split("\n}\n")[0]    # fused bodies are elsewhere
    return re.findall(r"= \S+ concatenate\(", entry)

  assert not unfused_concatenates(lambda x: tiles.stack(parts(x)))
  if count > tiles.MAX_FUSED_CONCATENATE:    # what tiles.stack is for
    assert unfused_concatenates(lambda x: jnp.stack(parts(x)))
