"""oneDNN's convolutions through the XLA FFI (`cpu_kernels.onednn`): the same functions, with
the same gradients, as XLA's convolutions, and `cpu_kernels` choosing them only where they run
JIT-compiled kernels."""

import os
import platform
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from chairgen import reports
from chairgen.models import cpu_kernels
from chairgen.models import upconv as upconv_lib
from chairgen.models.cpu_kernels import onednn

# On Linux x86-64 with tools/setup.sh's environment the kernels must build: a silent fallback
# there would hide a broken build behind the JAX forms.
EXPECTED = sys.platform == "linux" and platform.machine() == "x86_64"
needs_onednn = pytest.mark.skipif(not onednn.available(),
                                  reason=f"oneDNN unavailable: {onednn.unavailable_reason()}")


def test_available_where_the_environment_has_it():
  if EXPECTED:
    assert onednn.available(), onednn.unavailable_reason()


def xla_conv3x3(x, kernel):
  return lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


CASES = [  # (ours, reference, x shape, kernel shape)
    (onednn.conv3x3, xla_conv3x3, (2, 8, 8, 5), (3, 3, 5, 7)),
    (onednn.conv3x3, xla_conv3x3, (3, 4, 12, 16), (3, 3, 16, 4)),
    (onednn.upconv, upconv_lib.upconv_reference, (2, 4, 4, 5), (4, 4, 5, 7)),
    (onednn.upconv, upconv_lib.upconv_reference, (3, 4, 6, 16), (4, 4, 16, 3)),
    (onednn.matmul, jnp.dot, (5, 7), (7, 9)),
    (onednn.matmul, jnp.dot, (3, 40), (40, 20)),
]
KIND = {onednn.conv3x3: "conv3x3", onednn.upconv: "upconv", onednn.matmul: "matmul"}


def _values_and_gradients(fn, x, kernel, weights):
  loss = lambda x, k: jnp.sum(weights * jnp.tanh(fn(x, k)))  # noqa: E731
  return jax.jit(fn)(x, kernel), jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)


@needs_onednn
@pytest.mark.parametrize("operands", ["float32", "bfloat16"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_and_gradients_equal_xla(case, operands):
  ours, reference, x_shape, k_shape = CASES[case]
  kind = KIND[ours]
  try:
    onednn.implementations(kind, x_shape, k_shape, operands)
  except onednn.OnednnUnavailable as e:  # bf16 on a CPU without bf16 instructions
    pytest.skip(str(e))
  kx, kk, kw = jax.random.split(jax.random.key(case), 3)
  x = jax.random.normal(kx, x_shape)
  kernel = jax.random.normal(kk, k_shape) / np.sqrt(np.prod(k_shape[:-1]))
  y_shape = jax.eval_shape(reference, x, kernel).shape
  weights = jax.random.normal(kw, y_shape)
  y, grads = _values_and_gradients(lambda x, k: ours(x, k, operands), x, kernel, weights)
  if operands == "bfloat16":
    # The products read bf16 copies (8 bits of mantissa) and sum in float32: compare with the
    # reference on the same rounded inputs, and loosely, since the gradients round dy too.
    # bf16's relative rounding is 2^-9; a wrong tap or layout is off by O(1).
    x, kernel = (a.astype(jnp.bfloat16).astype(jnp.float32) for a in (x, kernel))
    tol = 1e-2
  else:
    tol = 1e-5
  assert y.dtype == jnp.float32 and y.shape == y_shape
  want_y, want_grads = _values_and_gradients(reference, x, kernel, weights)
  for got, want in zip((y, *grads), (want_y, *want_grads)):
    assert got.dtype == jnp.float32 and got.shape == want.shape
    error = float(jnp.abs(got - want).max() / jnp.abs(want).max())
    assert error < tol, error


@needs_onednn
def test_upconv_reads_the_kernel_unflipped():
  """One tap at (0, 0) of the 4x4 kernel: output pixel (2i+1, 2j+1) reads... nothing but
  what `upconv_reference` says; a flipped kernel would light up other pixels."""
  x = jnp.arange(1 * 3 * 3 * 1, dtype=jnp.float32).reshape(1, 3, 3, 1) + 1
  for tap in [(0, 0), (1, 2), (3, 3)]:
    kernel = jnp.zeros((4, 4, 1, 1)).at[tap].set(1.0)
    np.testing.assert_array_equal(onednn.upconv(x, kernel),
                                  upconv_lib.upconv_reference(x, kernel))


@needs_onednn
def test_repeated_calls_are_bitwise_equal():
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 32))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 32, 32))
  grad = jax.jit(jax.grad(lambda x, k: jnp.sum(onednn.conv3x3(x, k) ** 2), argnums=(0, 1)))
  first, second = grad(x, kernel), grad(x, kernel)
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)


@needs_onednn
@pytest.mark.parametrize("operands", ["float32", "bfloat16"])
def test_the_papers_layers_run_jit_compiled_kernels(operands):
  """What oneDNN runs for the 128 px net's layers on this CPU (reported, and checked to be JIT
  code wherever `cpu_kernels` would send the layer to oneDNN)."""
  layers = [("upconv", (32, 8, 8, 256), (4, 4, 256, 256)),
            ("conv3x3", (32, 32, 32, 92), (3, 3, 92, 92)),
            ("upconv", (32, 32, 32, 92), (4, 4, 92, 48)),
            ("upconv", (32, 64, 64, 48), (4, 4, 48, 5)),
            ("matmul", (32, 1024), (1024, 16384))]
  for kind, x_shape, k_shape in layers:
    if not onednn.jit_compiled(kind, x_shape, k_shape, operands):
      # bf16 on a CPU without bf16 instructions: oneDNN has no kernel, or reference code only
      # (and `cpu_kernels` keeps the JAX forms); float32 has JIT code on every x86-64 CPU.
      assert operands == "bfloat16", f"no JIT float32 {kind} {x_shape} in oneDNN"
      assert not cpu_kernels.use_onednn(kind, jnp.zeros(x_shape), jnp.zeros(k_shape), operands)
      continue
    names = onednn.implementations(kind, x_shape, k_shape, operands)
    assert set(names) == ({"forward", "input_gradient"} if kind == "matmul" else
                          {"forward", "input_gradient", "kernel_gradient"})
    print(kind, x_shape, k_shape, operands, names)
    assert not any("ref" in n for n in names.values()), names


def _cpu_isa():
  return set(reports.machine_info()["cpu_isa"])


@needs_onednn
def test_cpu_kernels_choose_onednn_per_layer():
  # What oneDNN may use: the CPU's, unless ONEDNN_MAX_CPU_ISA caps it (e.g. AVX2).
  capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper().startswith(("SSE", "AVX2"))
  avx512 = "avx512f" in _cpu_isa() and not capped
  x_narrow = jnp.zeros((2, 16, 16, 48))
  x_wide = jnp.zeros((2, 16, 16, cpu_kernels.WINOGRAD_MIN_CONV3X3_CHANNELS))
  upconv_kernel = jnp.zeros((4, 4, 48, 5))
  conv_narrow, conv_wide = jnp.zeros((3, 3, 48, 48)), jnp.zeros((3, 3, x_wide.shape[-1], 8))
  # Float32 goes to oneDNN where it has AVX-512 code (measured faster there), not on AVX2.
  assert cpu_kernels.use_onednn("upconv", x_narrow, upconv_kernel) == avx512
  assert cpu_kernels.use_onednn("conv3x3", x_narrow, conv_narrow) == avx512
  # Wide float32 3x3 convolutions stay Winograd; with bf16 operands oneDNN takes them where it
  # has JIT code for them.
  assert not cpu_kernels.use_onednn("conv3x3", x_wide, conv_wide)
  assert cpu_kernels.use_onednn("conv3x3", x_wide, conv_wide, jnp.bfloat16) == (
      onednn.jit_compiled("conv3x3", x_wide.shape, conv_wide.shape, jnp.bfloat16))
  if {"avx512_bf16", "amx_tile"} & _cpu_isa() and not capped:
    assert cpu_kernels.use_onednn("conv3x3", x_wide, conv_wide, jnp.bfloat16)
  # FC layers: the large ones (FC5's product is twice as fast there), not the narrow ones.
  x_fc, big, small = jnp.zeros((2, 1024)), jnp.zeros((1024, 1024)), jnp.zeros((1024, 512))
  assert big.size >= cpu_kernels.ONEDNN_MIN_DENSE_WEIGHTS > small.size
  assert cpu_kernels.use_onednn("matmul", x_fc, big) == avx512
  assert not cpu_kernels.use_onednn("matmul", x_fc, small)
  assert (onednn.MATMUL_TARGET in jax.jit(cpu_kernels.dense).lower(x_fc, big).as_text()) == avx512
  # bf16 activations are not what cpu_kernels gives it (they stay float32).
  assert not cpu_kernels.use_onednn("conv3x3", x_narrow.astype(jnp.bfloat16), conv_narrow)
  # And the generator's layers really call it: the FFI target is in the compiled program.
  hlo = jax.jit(cpu_kernels.upconv).lower(x_narrow, upconv_kernel).as_text()
  assert (onednn.TARGET in hlo) == avx512


def test_rejects_wrong_shapes_and_dtypes():
  x = jnp.zeros((1, 4, 4, 3))
  with pytest.raises(ValueError, match="input channels"):
    onednn.conv3x3(x, jnp.zeros((3, 3, 4, 2)))
  with pytest.raises(ValueError, match="4x4 kernel"):
    onednn.upconv(x, jnp.zeros((3, 3, 3, 2)))
  with pytest.raises(ValueError, match="float32 x and kernel"):
    onednn.conv3x3(x.astype(jnp.bfloat16), jnp.zeros((3, 3, 3, 2)))
  with pytest.raises(ValueError, match="operands must be float32 or bfloat16"):
    onednn.conv3x3(x, jnp.zeros((3, 3, 3, 2)), jnp.float16)
  with pytest.raises(ValueError, match=r"x \[B, Din\] and w \[Din, Dout\]"):
    onednn.matmul(jnp.zeros((2, 3)), jnp.zeros((4, 5)))
  with pytest.raises(ValueError, match="float32 x and w"):
    onednn.matmul(jnp.zeros((2, 3), jnp.bfloat16), jnp.zeros((3, 5)))
  # Inputs that are not [B, Din] keep XLA's dot, whatever the kernel's size.
  assert not cpu_kernels.use_onednn("matmul", jnp.zeros((2, 1, 1024)), jnp.zeros((1024, 1024)))


def _in_subprocess(code, **env):
  return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                        capture_output=True, text=True, timeout=300, check=False)


def test_switched_off_falls_back_with_a_reason():
  proc = _in_subprocess(
      "import jax.numpy as jnp\n"
      "from chairgen.models import cpu_kernels\n"
      "from chairgen.models import upconv\n"
      "from chairgen.models.cpu_kernels import onednn\n"
      "print('REASON', onednn.unavailable_reason())\n"
      "x, k = jnp.arange(32.0).reshape(1, 4, 4, 2), jnp.arange(64.0).reshape(4, 4, 2, 2)\n"
      "assert not cpu_kernels.use_onednn('upconv', x, k)\n"
      "error = jnp.abs(cpu_kernels.upconv(x, k) - upconv.upconv_reference(x, k)).max()\n"
      "print('ERROR', float(error))\n",
      CHAIRGEN_ONEDNN="0")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "REASON turned off by CHAIRGEN_ONEDNN=0" in proc.stdout
  assert "oneDNN convolutions unavailable" in proc.stderr  # said once, in the log
  assert float(proc.stdout.split("ERROR ")[1]) < 1e-2  # the JAX forms ran, and agree


@needs_onednn
def test_a_broken_build_says_what_failed(tmp_path, monkeypatch):
  """A compiler error surfaces as OnednnUnavailable with the command and the compiler's words,
  and leaves no library (nor half of one) in the cache."""
  source = tmp_path / "onednn.cc"
  source.write_text(onednn.SOURCES[0].read_text() + "\nthis is not C++;\n")
  monkeypatch.setattr(onednn, "SOURCES", (source, *onednn.SOURCES[1:]))
  monkeypatch.setenv(onednn.ENV_CACHE, str(tmp_path / "cache"))
  with pytest.raises(onednn.OnednnUnavailable, match="compiling onednn.cc, adam.cc failed"):
    onednn.build()
  assert not list((tmp_path / "cache").rglob("*.so*"))


def test_missing_onednn_names_the_package(monkeypatch, tmp_path):
  monkeypatch.setattr(sys, "prefix", str(tmp_path))
  monkeypatch.setattr(onednn.site, "getuserbase", lambda: str(tmp_path))
  monkeypatch.delenv(onednn.ENV_ROOT, raising=False)
  with pytest.raises(onednn.OnednnUnavailable, match="onednn-devel-cpu-gomp"):
    onednn.find_onednn()


def test_several_devices_keep_the_jax_forms():
  """XLA cannot split the custom call over a batch-sharded mesh, so with two devices the
  layers stay pure JAX (and the compiled program has no oneDNN call)."""
  proc = _in_subprocess(
      "import jax, jax.numpy as jnp\n"
      "from chairgen.models import cpu_kernels\n"
      "from chairgen.models.cpu_kernels import onednn\n"
      "assert jax.device_count() == 2\n"
      "x = jnp.ones((2, 8, 8, 16))\n"
      "assert not cpu_kernels.use_onednn('upconv', x, jnp.ones((4, 4, 16, 8)))\n"
      "hlo = jax.jit(cpu_kernels.upconv).lower(x, jnp.ones((4, 4, 16, 8))).as_text()\n"
      "assert onednn.TARGET not in hlo\n"
      "print('OK')\n",
      XLA_FLAGS="--xla_force_host_platform_device_count=2")
  assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-2000:]
