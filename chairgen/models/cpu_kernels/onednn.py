"""oneDNN's direct convolutions inside XLA:CPU programs, through the XLA FFI.

XLA:CPU's own convolutions are slow to differentiate, and the Winograd and phase forms of this
package move their transformed tiles through memory several times; oneDNN's JIT-compiled
direct convolutions (what PyTorch runs on the CPU) read each input once. `onednn.cc` wraps
them as two FFI handlers (the forward pass; both gradients), and oneDNN's matmul as a third (the
large FC layers' products, `matmul`). This module compiles it, together
with `adam.cc` (the one-pass Adam update of `chairgen.optimizer`), with the C++ compiler on
first use, for this machine's CPU, against the oneDNN of the `onednn-devel-cpu-gomp` wheel (a
dependency on Linux x86-64) and the FFI headers that jaxlib ships, caches the library under
`cache_dir()`, and registers it with XLA.

Where that cannot happen (another OS or architecture, no C++ compiler, no oneDNN, or
CHAIRGEN_ONEDNN=0), `available()` is False, says why once in the log, and `cpu_kernels` keeps
its pure-JAX forms: a run never depends on this module to be correct, only to be fast.

XLA cannot split a custom call over a batch-sharded mesh by itself (it would gather the whole
batch onto every device), so `cpu_kernels` uses these only while the process has one device.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
from pathlib import Path
import platform
import shutil
import site
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Compiled into one library: the convolutions, and chairgen.optimizer's Adam update.
SOURCES = tuple(Path(__file__).with_name(name) for name in ("onednn.cc", "adam.cc"))
TARGET = "chairgen_onednn_convolution"            # the forward pass
GRADIENTS_TARGET = "chairgen_onednn_convolution_gradients"   # both gradients in one call
MATMUL_TARGET = "chairgen_onednn_matmul"   # the FC layers' products
ADAM_TARGET = "chairgen_adam"         # chairgen.optimizer's one-pass Adam update
ENV_SWITCH = "CHAIRGEN_ONEDNN"        # '0' turns the oneDNN path off
ENV_ROOT = "CHAIRGEN_ONEDNN_ROOT"     # a prefix with include/oneapi/dnnl and lib/libdnnl.so
ENV_CACHE = "CHAIRGEN_CACHE_DIR"      # where the compiled library goes (~/.cache/chairgen)

log = logging.getLogger(__name__)


class OnednnUnavailable(RuntimeError):
  """Why the oneDNN path cannot be built or loaded here."""


def cache_dir() -> Path:
  root = os.environ.get(ENV_CACHE) or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "chairgen")
  return Path(root) / "onednn"


def find_onednn() -> Path:
  """The install prefix holding oneDNN's headers and library (the wheel's data directory)."""
  candidates = [os.environ.get(ENV_ROOT), sys.prefix, site.getuserbase()]
  for prefix in filter(None, candidates):
    prefix = Path(prefix)
    if ((prefix / "include/oneapi/dnnl/dnnl.hpp").is_file()
        and any((prefix / "lib").glob("libdnnl.so*"))):
      return prefix
  raise OnednnUnavailable(
      f"oneDNN's headers and library are not under {[c for c in candidates if c]}; install "
      "them with `pip install onednn-devel-cpu-gomp==2023.2.0` (Linux x86-64), or point "
      f"{ENV_ROOT} at a prefix that has include/oneapi/dnnl/dnnl.hpp and lib/libdnnl.so")


def _compiler() -> str:
  compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
  if not compiler:
    raise OnednnUnavailable("no C++ compiler (g++ or $CXX) to build the oneDNN kernels; "
                            "install one, e.g. `apt-get install g++`")
  return compiler


def _cpu_flags() -> str:
  """The CPU's feature flags: the library is compiled for them (-march=native), so a cache
  shared between different machines keeps one build per kind of CPU."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("flags"):
          return line
  except OSError:
    pass
  return platform.processor()


# -march=native: the loops of adam.cc run 3x faster compiled for the CPU at hand than as
# per-function AVX2 / AVX-512 clones called from a generic build (measured; docs/performance.md).
_FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-fopenmp", "-fno-math-errno",
          "-march=native")


def build() -> Path:
  """Compiles SOURCES (once per source, jaxlib, oneDNN and CPU; cached) and returns the library."""
  prefix, compiler = find_onednn(), _compiler()
  key = hashlib.sha256(b"\0".join([
      *(source.read_bytes() for source in SOURCES), jax.__version__.encode(),
      str(prefix).encode(), compiler.encode(), jax.ffi.include_dir().encode(),
      " ".join(_FLAGS).encode(), _cpu_flags().encode()])).hexdigest()[:16]
  library = cache_dir() / f"libchairgen_onednn-{key}.so"
  if library.is_file():
    return library
  library.parent.mkdir(parents=True, exist_ok=True)
  partial = library.with_name(f"{library.name}.{os.getpid()}.partial")
  command = [compiler, *_FLAGS, *map(str, SOURCES), "-o", str(partial),
             f"-I{prefix / 'include'}", "-isystem", jax.ffi.include_dir(),
             f"-L{prefix / 'lib'}", "-ldnnl", f"-Wl,-rpath,{prefix / 'lib'}"]
  log.info("building the oneDNN convolution and Adam kernels: %s", " ".join(command))
  done = subprocess.run(command, capture_output=True, text=True)
  if done.returncode:
    partial.unlink(missing_ok=True)
    names = ", ".join(source.name for source in SOURCES)
    raise OnednnUnavailable(f"compiling {names} failed ({' '.join(command)}):\n"
                            f"{done.stderr[-4000:]}")
  os.replace(partial, library)  # atomic: a concurrent build never sees half a library
  return library


@functools.cache
def _library() -> ctypes.CDLL:
  """Builds, loads and registers the kernels; raises OnednnUnavailable with the reason."""
  if os.environ.get(ENV_SWITCH, "1") == "0":
    raise OnednnUnavailable(f"turned off by {ENV_SWITCH}=0")
  if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
    raise OnednnUnavailable(f"built for Linux x86-64 only, this is {sys.platform} "
                            f"{platform.machine()}")
  library = ctypes.CDLL(str(build()))
  jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.ChairgenOnednnForward),
                              platform="cpu")
  jax.ffi.register_ffi_target(GRADIENTS_TARGET,
                              jax.ffi.pycapsule(library.ChairgenOnednnGradients),
                              platform="cpu")
  jax.ffi.register_ffi_target(MATMUL_TARGET, jax.ffi.pycapsule(library.ChairgenOnednnMatmul),
                              platform="cpu")
  jax.ffi.register_ffi_target(ADAM_TARGET, jax.ffi.pycapsule(library.ChairgenAdam),
                              platform="cpu")
  return library


@functools.cache
def unavailable_reason() -> str | None:
  """None where the oneDNN kernels are built and registered, else why not (logged once)."""
  try:
    _library()
  except (OnednnUnavailable, OSError) as e:
    log.warning("oneDNN convolutions unavailable, using the JAX forms instead: %s", e)
    return str(e)
  return None


def available() -> bool:
  return unavailable_reason() is None


def _attributes(transposed: bool, stride: int, pad: int) -> dict:
  return dict(transposed=np.int64(transposed), stride=np.int64(stride), pad=np.int64(pad))


def _forward(x: Array, kernel: Array, y_shape, **geometry) -> Array:
  _library()
  return jax.ffi.ffi_call(TARGET, jax.ShapeDtypeStruct(tuple(y_shape), jnp.float32),
                          vmap_method="sequential")(x, kernel, **_attributes(**geometry))


def _gradients(operands, x: Array, kernel: Array, dy: Array, **geometry):
  """(dx, dkernel) of `_forward(x, kernel, ..., **geometry)`, in float32, from one call."""
  _library()
  shapes = (jax.ShapeDtypeStruct(x.shape, jnp.float32),
            jax.ShapeDtypeStruct(kernel.shape, jnp.float32))
  return jax.ffi.ffi_call(GRADIENTS_TARGET, shapes, vmap_method="sequential")(
      x, kernel, dy.astype(operands), **_attributes(**geometry))


def _check(x: Array, kernel: Array, size: int) -> None:
  if x.ndim != 4 or kernel.shape[:2] != (size, size) or kernel.ndim != 4:
    raise ValueError(f"expected x [B, H, W, C] and a {size}x{size} kernel [{size}, {size}, "
                     f"Cin, Cout], got {x.shape} and {kernel.shape}")
  if kernel.shape[2] != x.shape[-1]:
    raise ValueError(f"kernel expects {kernel.shape[2]} input channels, x has {x.shape[-1]}")
  if x.dtype != jnp.float32 or kernel.dtype != jnp.float32:
    raise ValueError(f"the oneDNN path takes float32 x and kernel (`operands` sets what the "
                     f"products read), got {x.dtype} and {kernel.dtype}")


OPERANDS = (jnp.float32, jnp.bfloat16)


def _operands(dtype) -> jnp.dtype:
  dtype = jnp.dtype(dtype)
  if dtype not in OPERANDS:
    raise ValueError(f"operands must be float32 or bfloat16, got {dtype}")
  return dtype


# The two layers' geometry in oneDNN's terms.
_CONV3X3 = dict(transposed=False, stride=1, pad=1)
_UPCONV = dict(transposed=True, stride=2, pad=1)


# operands: what the products read (x, kernel and output gradient are cast to it); they sum
# in float32 and every result is float32, as in the rest of `cpu_kernels`.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv3x3(x_BxHxWxCin: Array, kernel_3x3xCinxCout: Array, operands=jnp.float32) -> Array:
  """The 3x3 'SAME' convolution (cross-correlation, as `lax.conv_general_dilated`)."""
  return _conv3x3_fwd(x_BxHxWxCin, kernel_3x3xCinxCout, operands)[0]


def _conv3x3_fwd(x, kernel, operands):
  _check(x, kernel, 3)
  x, kernel = x.astype(_operands(operands)), kernel.astype(operands)
  y = _forward(x, kernel, x.shape[:3] + kernel.shape[3:], **_CONV3X3)
  return y, (x, kernel)


def _conv3x3_bwd(operands, residuals, dy):
  return _gradients(operands, *residuals, dy, **_CONV3X3)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


# `chairgen.models.upconv`'s kernel is Caffe's Deconvolution kernel (and oneDNN's) flipped in
# both spatial axes: oneDNN's deconvolution with stride 2 and padding 1 takes it flipped back.
def _flip(kernel: Array) -> Array:
  return kernel[::-1, ::-1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def upconv(x_BxHxWxCin: Array, kernel_4x4xCinxCout: Array, operands=jnp.float32) -> Array:
  """The 4x4 stride-2 up-convolution of `chairgen.models.upconv`: [B, 2H, 2W, Cout]."""
  return _upconv_fwd(x_BxHxWxCin, kernel_4x4xCinxCout, operands)[0]


def _upconv_fwd(x, kernel, operands):
  _check(x, kernel, 4)
  x, flipped = x.astype(_operands(operands)), _flip(kernel).astype(operands)
  b, h, w, _ = x.shape
  y = _forward(x, flipped, (b, 2 * h, 2 * w, kernel.shape[3]), **_UPCONV)
  return y, (x, flipped)


def _upconv_bwd(operands, residuals, dy):
  dx, dflipped = _gradients(operands, *residuals, dy, **_UPCONV)
  return dx, _flip(dflipped)


upconv.defvjp(_upconv_fwd, _upconv_bwd)


def _matmul_call(a: Array, b: Array, transpose_a: bool = False, transpose_b: bool = False):
  """op(a) · op(b) in float32 through oneDNN's matmul; op transposes where asked."""
  _library()
  m = a.shape[1] if transpose_a else a.shape[0]
  n = b.shape[0] if transpose_b else b.shape[1]
  return jax.ffi.ffi_call(MATMUL_TARGET, jax.ShapeDtypeStruct((m, n), jnp.float32),
                          vmap_method="sequential")(
      a, b, transpose_a=np.int64(transpose_a), transpose_b=np.int64(transpose_b))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul(x_BxDin: Array, w_DinxDout: Array, operands=jnp.float32) -> Array:
  """x · w for float32 x and w, the products reading `operands`: f32[B, Dout]."""
  return _matmul_fwd(x_BxDin, w_DinxDout, operands)[0]


def _matmul_fwd(x, w, operands):
  if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
    raise ValueError(f"matmul takes x [B, Din] and w [Din, Dout], got {x.shape} and {w.shape}")
  if x.dtype != jnp.float32 or w.dtype != jnp.float32:
    raise ValueError(f"matmul takes float32 x and w (`operands` sets what the products read), "
                     f"got {x.dtype} and {w.dtype}")
  x, w = x.astype(_operands(operands)), w.astype(operands)
  return _matmul_call(x, w), (x, w)


def _matmul_bwd(operands, residuals, dy):
  x, w = residuals
  dy = dy.astype(operands)
  # The kernel gradient xᵀ · dy stays XLA's: oneDNN's was slower for FC5 (docs/performance.md).
  return (_matmul_call(dy, w, transpose_b=True),
          jnp.dot(x.T, dy, preferred_element_type=jnp.float32))


matmul.defvjp(_matmul_fwd, _matmul_bwd)


KINDS = ("conv3x3", "upconv", "matmul")


def implementations(kind: str, x_shape, kernel_shape, operands=jnp.float32) -> dict[str, str]:
  """oneDNN's implementation names for a layer (kind 'conv3x3', 'upconv' or 'matmul', the
  latter with x [B, Din] and kernel [Din, Dout]), e.g. {'forward': 'brgconv:avx512_core', ...}:
  what actually runs, for `jit_compiled`, docs and tests. Raises OnednnUnavailable where oneDNN
  has none for a pass."""
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  bf16 = _operands(operands) == jnp.bfloat16
  if kind == "matmul":
    return _matmul_implementations(tuple(x_shape), tuple(kernel_shape), bf16)
  return _implementations(kind, tuple(x_shape), tuple(kernel_shape), bf16)


def _names(query, passes: dict[str, tuple], what: str, bf16: bool) -> dict[str, str]:
  """{pass: implementation name} from `query(*arguments, out, out_size)`, one of onednn.cc's
  chairgen_onednn_*implementation functions, per pass; OnednnUnavailable names a pass oneDNN
  has nothing for."""
  names = {}
  for name, arguments in passes.items():
    out = ctypes.create_string_buffer(256)
    if not query(*arguments, out, ctypes.c_int64(len(out))):
      raise OnednnUnavailable(f"oneDNN has no {name} for {what} with "
                              f"{'bfloat16' if bf16 else 'float32'} operands")
    names[name] = out.value.decode()
  return names


@functools.cache
def _matmul_implementations(x_shape, kernel_shape, bf16) -> dict[str, str]:
  """The FC layer's two oneDNN passes: x · w, and dy · wᵀ (its kernel gradient is XLA's)."""
  (b, d_in), (_, d_out) = x_shape, kernel_shape
  passes = {"forward": (b, d_in, d_out, 0), "input_gradient": (b, d_out, d_in, 1)}
  return _names(_library().chairgen_onednn_matmul_implementation,
                {name: tuple(map(ctypes.c_int64, (m, k, n, 0, transpose_b, bf16)))
                 for name, (m, k, n, transpose_b) in passes.items()},
                f"matmul {x_shape} x {kernel_shape}", bf16)


@functools.cache
def _implementations(kind, x_shape, kernel_shape, bf16) -> dict[str, str]:
  b, h, w, _ = x_shape
  transposed = kind == "upconv"
  scale = 2 if transposed else 1
  y_shape = (b, scale * h, scale * w, kernel_shape[3])
  as_c = lambda s: (ctypes.c_int64 * 4)(*s)
  passes = ("forward", "input_gradient", "kernel_gradient")
  return _names(_library().chairgen_onednn_implementation,
                {name: (ctypes.c_int64(mode), ctypes.c_int64(transposed), ctypes.c_int64(bf16),
                        as_c(x_shape), as_c(y_shape), as_c(kernel_shape),
                        ctypes.c_int64(scale), ctypes.c_int64(1))
                 for mode, name in enumerate(passes)},
                f"{kind} {x_shape} x {kernel_shape}", bf16)


def jit_compiled(kind: str, x_shape, kernel_shape, operands=jnp.float32) -> bool:
  """Whether oneDNN runs all its passes of this layer with JIT-compiled kernels on this CPU,
  not its reference code (which is many times slower than the JAX forms): bfloat16 on a CPU
  without bf16 instructions, for one, may have only those."""
  try:
    names = implementations(kind, x_shape, kernel_shape, operands)
  except OnednnUnavailable:
    return False
  return not any("ref" in name for name in names.values())
