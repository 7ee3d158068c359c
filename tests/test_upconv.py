"""The CPU kernels of the 4x4 stride-2 up-convolution equal the transposed convolution."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chairgen.models import cpu_kernels
from chairgen.models import layers
from chairgen.models import upconv

# "jax_forms": "auto" without oneDNN (what runs with several devices, off x86-64, or with
# CHAIRGEN_ONEDNN=0), for how it chooses among its pure-JAX forms.
jax_forms = functools.partial(cpu_kernels.upconv, onednn_allowed=False)
IMPLEMENTATIONS = {"conv_transpose": upconv.upconv_reference, "phase": cpu_kernels.upconv_phase,
                   "winograd": cpu_kernels.upconv_winograd, "auto": cpu_kernels.upconv,
                   "jax_forms": jax_forms}
# "auto" is "phase" or "winograd", and "winograd" compiles slowly: both are tested below, on
# fewer shapes.
IMPLS = ["phase"]
# Jitted once each: one compilation instead of one per operation.
JIT = {name: jax.jit(fn) for name, fn in IMPLEMENTATIONS.items()}
reference = JIT["conv_transpose"]
SHAPES = [  # (batch, height, width, c_in, c_out)
    (1, 1, 1, 1, 1),
    (2, 4, 4, 3, 5),
    (3, 5, 7, 4, 2),   # odd, non-square
    (2, 8, 8, 16, 6),
    (2, 4, 6, 5, 12),  # wider than IM2COL_WGRAD_MAX_CHANNELS: per tap kernel gradient
]


def _random(shape, seed):
  x_shape = shape[:4]
  k_shape = (4, 4, shape[3], shape[4])
  kx, kk = jax.random.split(jax.random.key(seed))
  return jax.random.normal(kx, x_shape), jax.random.normal(kk, k_shape)


def caffe_deconv(x, caffe_weights):
  """Caffe's Deconvolution (kernel 4, stride 2, pad 1) by its definition, in numpy.

  It scatters x[i, j] * W[ky, kx] to output (2i - 1 + ky, 2j - 1 + kx): the gradient of a
  stride-2 convolution.
  """
  b, h, w, _ = x.shape
  out = np.zeros((b, 2 * h + 2, 2 * w + 2, caffe_weights.shape[-1]))  # one pixel border
  for i in range(h):
    for j in range(w):
      for ky in range(4):
        for kx in range(4):
          out[:, 2 * i + ky, 2 * j + kx] += x[:, i, j] @ caffe_weights[ky, kx]
  return out[:, 1:-1, 1:-1]


def bed_of_nails_then_correlate(x, kernel):
  """Figure 2: upsample with zeros (entry at the top left of each 2x2 block), then correlate."""
  b, h, w, c = x.shape
  up = np.zeros((b, 2 * h, 2 * w, c))
  up[:, ::2, ::2] = x
  up = np.pad(up, ((0, 0), (2, 1), (2, 1), (0, 0)))
  out = np.zeros((b, 2 * h, 2 * w, kernel.shape[-1]))
  for y in range(2 * h):
    for xx in range(2 * w):
      out[:, y, xx] = np.einsum("bhwc,hwco->bo", up[:, y:y + 4, xx:xx + 4], kernel)
  return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", IMPLS)
def test_forward_equals_reference_and_doubles_size(impl, shape):
  x, kernel = _random(shape, seed=sum(shape))
  got = JIT[impl](x, kernel)
  want = reference(x, kernel)
  assert got.shape == (shape[0], 2 * shape[1], 2 * shape[2], shape[4])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("impl", IMPLS)
def test_gradients_equal_reference(impl, shape):
  _assert_gradients_equal_reference(impl, *_random(shape, seed=7 + sum(shape)))


def _assert_gradients_equal_reference(impl, x, kernel):
  """Input and kernel gradients of a weighted loss, against the reference's."""
  b, h, w, _ = x.shape
  weights = jax.random.normal(jax.random.key(3), (b, 2 * h, 2 * w, kernel.shape[-1]))

  def loss(fn):
    return lambda x, k: jnp.sum(weights * jnp.tanh(fn(x, k)))

  got = jax.jit(jax.grad(loss(IMPLEMENTATIONS[impl]), argnums=(0, 1)))(x, kernel)
  want = jax.jit(jax.grad(loss(upconv.upconv_reference), argnums=(0, 1)))(x, kernel)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_reference_is_bed_of_nails_upsampling_plus_convolution():
  x, kernel = _random((2, 3, 4, 3, 2), seed=11)
  np.testing.assert_allclose(reference(x, kernel),
                             bed_of_nails_then_correlate(np.asarray(x), np.asarray(kernel)),
                             rtol=1e-5, atol=1e-5)


def test_equals_caffe_deconvolution_with_flipped_kernel():
  """Kernel 4, stride 2, pad 1 in Caffe; our kernel is Caffe's flipped in both spatial axes."""
  x, kernel = _random((2, 3, 5, 3, 4), seed=5)
  caffe_weights = np.asarray(kernel)[::-1, ::-1]
  np.testing.assert_allclose(JIT["phase"](x, kernel),
                             caffe_deconv(np.asarray(x), caffe_weights), rtol=1e-5, atol=1e-5)


def test_parameters_interchangeable_with_flax_conv_transpose():
  x, kernel = _random((2, 4, 4, 3, 5), seed=2)
  bias = jnp.arange(5.0)
  layer = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding="SAME")
  flax_out = layer.apply({"params": {"kernel": kernel, "bias": bias}}, x)
  np.testing.assert_allclose(JIT["phase"](x, kernel) + bias, flax_out,
                             rtol=1e-5, atol=1e-5)


def test_bfloat16_close_to_float32():
  x, kernel = _random((2, 4, 4, 8, 4), seed=9)
  got = JIT["phase"](x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16
  want = reference(x, kernel)
  np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=0.05, atol=0.1)


def _assert_value_and_gradients_equal_reference(impl, x, kernel):
  np.testing.assert_allclose(JIT[impl](x, kernel), reference(x, kernel), rtol=1e-5, atol=1e-5)
  _assert_gradients_equal_reference(impl, x, kernel)


def test_winograd_equals_reference_on_a_non_square_map():
  _assert_value_and_gradients_equal_reference("winograd", *_random((2, 4, 6, 5, 12), seed=3))


def test_cpu_kernels_take_winograd_for_wide_layers():
  for c_out in (cpu_kernels.WINOGRAD_MIN_CHANNELS - 1, cpu_kernels.WINOGRAD_MIN_CHANNELS):
    x, kernel = _random((2, 4, 4, 3, c_out), seed=c_out)
    jaxpr = str(jax.make_jaxpr(jax_forms)(x, kernel))
    assert ("tiled_products" in jaxpr) == (c_out >= cpu_kernels.WINOGRAD_MIN_CHANNELS)
  _assert_value_and_gradients_equal_reference("jax_forms", x, kernel)   # the wide case


def _layer_jaxpr(kernels, x, kernel):
  layer = layers.UpConv(kernel.shape[-1], kernels=kernels)
  params = {"kernel": kernel, "bias": jnp.zeros(kernel.shape[-1])}
  return str(jax.make_jaxpr(lambda p, x: layer.apply({"params": p}, x))(params, x))


def test_kernel_switch_auto_on_the_cpu_xla_everywhere_jax_forms_everywhere(monkeypatch):
  # Shapes no other test traces: jax caches traces by function and shapes.
  x, kernel = _random((1, 6, 6, 3, cpu_kernels.WINOGRAD_MIN_CHANNELS + 3), seed=4)
  on_cpu = jax.default_backend() == "cpu"
  auto = _layer_jaxpr("auto", x, kernel)
  if on_cpu and cpu_kernels.use_onednn("upconv", x, kernel):
    assert "ffi_call" in auto and "tiled_products" not in auto   # oneDNN (test_onednn.py)
  else:
    assert ("tiled_products" in auto) == on_cpu
  xla = _layer_jaxpr("xla", x, kernel)
  assert "tiled_products" not in xla and "custom_vjp" not in xla
  assert "conv_general_dilated" in xla  # lax.conv_transpose: cuDNN's / the TPU's kernel
  jax_forms = _layer_jaxpr("jax", x, kernel)       # the pure-JAX forms, never oneDNN
  assert "tiled_products" in jax_forms and "ffi_call" not in jax_forms
  x, kernel = _random((1, 10, 10, 3, cpu_kernels.WINOGRAD_MIN_CHANNELS + 5), seed=6)
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  off_cpu = _layer_jaxpr("auto", x, kernel)
  assert "tiled_products" not in off_cpu and "custom_vjp" not in off_cpu
  assert not cpu_kernels.use_onednn("upconv", x, kernel)   # oneDNN's calls are CPU code
  jax_forms_off_cpu = _layer_jaxpr("jax", x, kernel)
  assert "tiled_products" in jax_forms_off_cpu and "ffi_call" not in jax_forms_off_cpu


def test_winograd_bfloat16_close_to_float32_and_odd_sizes_fall_back():
  x, kernel = _random((2, 4, 4, 8, 4), seed=9)
  got = JIT["winograd"](x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(got.astype(jnp.float32), reference(x, kernel), rtol=0.05, atol=0.1)
  x, kernel = _random((1, 3, 5, 2, 3), seed=1)
  assert "tiled_products" not in str(jax.make_jaxpr(cpu_kernels.upconv_winograd)(x, kernel))
  np.testing.assert_allclose(JIT["winograd"](x, kernel), reference(x, kernel),
                             rtol=1e-5, atol=1e-5)


def test_bad_shapes_and_names_raise():
  x, kernel = _random((1, 4, 4, 3, 2), seed=0)
  with pytest.raises(ValueError, match="input channels"):
    cpu_kernels.upconv_phase(x[..., :2], kernel)
  with pytest.raises(ValueError, match=r"\[4, 4, Cin, Cout\]"):
    cpu_kernels.upconv_phase(x, kernel[:3])
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    upconv.upconv_reference(x[0], kernel)
  with pytest.raises(ValueError, match="unknown model.kernels"):
    layers.uses_cpu_kernels("fft")
