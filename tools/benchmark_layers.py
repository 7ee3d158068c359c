r"""Times the layers of 1s-S-deep, and the generator's gradient, with each `model.kernels`.

    python tools/benchmark_layers.py [--batch=32] [--image_size=64] [--repeats=5] \
        [--kernels=auto,xla,auto-jax] [--dtype=float32] [--nogenerator] \
        [--winograd_tiles=32x16x256,64x64x48]

Prints, per up-convolution, per 3x3 convolution and per FC layer of 1s-S-deep at the given
size, the forward time and the forward+backward time (gradients for input and kernel) with each kernel switch
(layers.KERNELS: 'auto' is models.cpu_kernels on the CPU, 'xla' XLA's own convolutions,
'jax' cpu_kernels' pure-JAX forms; 'auto-jax', the name earlier runs used, is 'jax'), then
the time of one gradient of the whole generator's loss with each; with --winograd_tiles, a 3x3
convolution + ReLU of each given shape by Winograd F(2x2, 3x3) and F(4x4, 3x3) (what
`cpu_kernels.F4_MIN_INPUT_BYTES` was chosen from).  Numbers are medians of `repeats` runs after
compilation.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

# The checkout's chairgen, also where another one is installed (as tools/benchmark.py does).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from chairgen import augment  # pylint: disable=wrong-import-position
from chairgen import host_memory
from chairgen import inference
from chairgen import input_pipeline
from chairgen import losses
from chairgen import mesh
from chairgen import models
from chairgen.models import layers
from chairgen.models import variants
from chairgen.models.cpu_kernels import winograd

_BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Image size of the generator.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per measurement.")
_WIDTH = flags.DEFINE_float("width_multiplier", 1.0, "Generator width multiplier.")
# 'auto-jax': model.kernels='jax' (cpu_kernels' pure-JAX forms), the name in earlier docs.
JAX_FORMS = "auto-jax"
_KERNELS = flags.DEFINE_list("kernels", list(layers.KERNELS), "model.kernels values to time, "
                             f"and '{JAX_FORMS}' (= 'jax', cpu_kernels' pure-JAX forms).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                           "The layers' dtype (model.dtype).")
_GENERATOR = flags.DEFINE_bool("generator", True, "Also time the whole generator's gradient.")
_TILES = flags.DEFINE_list("winograd_tiles", [], "BATCHxSIZExCHANNELS maps on which to time "
                           "F(2x2, 3x3) against F(4x4, 3x3).")
_THETA_DIM = augment.THETA_DIM


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
  jax.block_until_ready(fn())  # compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _layer_shapes(image_size: int, multiplier: float) -> list[tuple[int, int, int]]:
  """(input size, Cin, Cout) of each up-convolution of 1s-S-deep."""
  widths = variants.VARIANTS["1s-S-deep"].streams[0][1]
  hidden = variants.hidden_upconv_widths(widths, image_size, multiplier)
  c_in = [variants.scale_width(widths.fc5, multiplier)] + list(hidden)
  c_out = list(hidden) + [5]
  return [(variants.BASE_SIZE * 2 ** i, a, b) for i, (a, b) in enumerate(zip(c_in, c_out))]


def _dense_shapes(image_size: int, multiplier: float) -> list[tuple[str, int, int]]:
  """(name, Din, Dout) of each FC layer of 1s-S-deep (809 styles), largest first."""
  config = models.default_config()
  config.width_multiplier = multiplier
  model = models.create_model(config, 809, image_size, _THETA_DIM)
  shapes = inference.abstract_params(model, 809, mesh.create_mesh())
  found = [(jax.tree_util.keystr(path[:-1], simple=True, separator="/"), *leaf.shape)
           for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0] if leaf.ndim == 2]
  return sorted(found, key=lambda s: -s[1] * s[2])


def _time_layer(fns: dict[str, Callable], x: jax.Array, kernel: jax.Array,
                repeats: int) -> str:
  row = []
  for name, fn in fns.items():
    fwd = jax.jit(fn)
    grad = jax.jit(jax.grad(lambda x, k, fn=fn: jnp.sum(jnp.square(fn(x, k))), argnums=(0, 1)))
    t_f = _median_seconds(lambda: fwd(x, kernel), repeats)
    t_g = _median_seconds(lambda: grad(x, kernel), repeats)
    row.append(f"{name} {1e3 * t_f:8.3f} / {1e3 * t_g:8.3f}")
  return "   ".join(row)


def _switch(kernels: str) -> str:
  """The model.kernels value a --kernels entry times (JAX_FORMS is model.kernels='jax')."""
  return "jax" if kernels == JAX_FORMS else kernels


def _layer_fn(layer_cls, kernels: str) -> Callable:
  """x, kernel -> y computed as the generator's layer does with this kernel switch."""
  def fn(x, kernel):
    layer = layer_cls(kernel.shape[-1], relu=False, kernels=_switch(kernels),
                      dtype=_DTYPE.value)
    params = {"kernel": kernel, "bias": jnp.zeros(kernel.shape[-1])}
    return layer.apply({"params": params}, x)
  return fn


def bench_layers(batch: int, image_size: int, multiplier: float, repeats: int) -> None:
  print(f"per layer, batch {batch}: forward / forward+backward, milliseconds")
  upconvs = {name: _layer_fn(layers.UpConv, name) for name in _KERNELS.value}
  convs = {name: _layer_fn(layers.Conv, name) for name in _KERNELS.value}
  for i, (size, c_in, c_out) in enumerate(_layer_shapes(image_size, multiplier)):
    kx, kk = jax.random.split(jax.random.key(size))
    x = jax.random.normal(kx, (batch, size, size, c_in))
    kernel = jax.random.normal(kk, (4, 4, c_in, c_out)) * 0.05
    print(f"  upconv{i + 1} {size:3d}px {c_in:3d}->{c_out:3d}:  "
          + _time_layer(upconvs, x, kernel, repeats), flush=True)
    if c_out != 5 and convs:   # each hidden up-convolution is followed by conv{i+1}
      x = jax.random.normal(kx, (batch, 2 * size, 2 * size, c_out))
      kernel = jax.random.normal(kk, (3, 3, c_out, c_out)) * (2 / (9 * c_out)) ** 0.5
      print(f"  conv{i + 1}   {2 * size:3d}px {c_out:3d}->{c_out:3d}:  "
            + _time_layer(convs, x, kernel, repeats), flush=True)
  denses = {name: _layer_fn(layers.Dense, name) for name in _KERNELS.value}
  for name, d_in, d_out in _dense_shapes(image_size, multiplier):
    kx, kk = jax.random.split(jax.random.key(d_in * d_out))
    x = jax.random.normal(kx, (batch, d_in))
    kernel = jax.random.normal(kk, (d_in, d_out)) * (2 / d_in) ** 0.5
    print(f"  {name:12s} {d_in:5d}->{d_out:5d}:  " + _time_layer(denses, x, kernel, repeats),
          flush=True)


def bench_winograd_tiles(shapes: list[str], repeats: int) -> None:
  print("3x3 convolution + ReLU by Winograd F(m x m, 3x3): forward / forward+backward, ms")
  fns = {f"F({m}x{m})": (lambda x, k, m=m: jax.nn.relu(winograd.conv3x3(x, k, output_tile=m)))
         for m in (2, 4)}
  for shape in shapes:
    batch, size, channels = (int(v) for v in shape.split("x"))
    kx, kk = jax.random.split(jax.random.key(size))
    x = jax.random.normal(kx, (batch, size, size, channels))
    kernel = jax.random.normal(kk, (3, 3, channels, channels)) * (2 / (9 * channels)) ** 0.5
    mib = x.size * 4 / 2**20
    print(f"  batch {batch:3d} {size:3d}px {channels:3d} ch ({mib:5.1f} MiB):  "
          + _time_layer(fns, x, kernel, repeats), flush=True)


def bench_generator(batch: int, image_size: int, multiplier: float, repeats: int) -> None:
  print(f"1s-S-deep at {image_size} px, batch {batch}: one loss gradient, milliseconds")
  num_styles = 64
  style = input_pipeline.style_encoding(jnp.arange(batch) % num_styles, num_styles)
  view = jnp.ones((batch, 4)) * 0.5
  theta = jnp.zeros((batch, _THETA_DIM))
  image = jnp.full((batch, image_size, image_size, 3), 0.5)
  mask = jnp.full((batch, image_size, image_size, 1), 0.5)
  loss_config = losses.default_config()
  for impl in _KERNELS.value:
    config = models.default_config()
    config.kernels = _switch(impl)
    config.width_multiplier = multiplier
    config.dtype = _DTYPE.value
    model = models.create_model(config, num_styles, image_size, _THETA_DIM)
    params = model.init(jax.random.key(0), style, view, theta)["params"]

    def loss_fn(params, model=model):
      outputs = model.apply({"params": params}, style, view, theta)
      return losses.compute(outputs, image, mask, loss_config)[0]

    grad = jax.jit(jax.grad(loss_fn))
    fwd = jax.jit(loss_fn)
    t_f = _median_seconds(lambda: fwd(params), repeats)
    t_g = _median_seconds(lambda: grad(params), repeats)
    print(f"  {impl:15s} forward {1e3 * t_f:8.1f}   gradient {1e3 * t_g:8.1f}")


def main(argv):
  del argv
  allocator = host_memory.configure()
  print(f"host allocator {allocator}; jax {jax.__version__}, {jax.devices()[0].platform}, {jax.device_count()} device(s)")
  if _KERNELS.value:
    bench_layers(_BATCH.value, _IMAGE_SIZE.value, _WIDTH.value, _REPEATS.value)
  if _TILES.value:
    bench_winograd_tiles(_TILES.value, _REPEATS.value)
  if _GENERATOR.value and _KERNELS.value:
    bench_generator(_BATCH.value, _IMAGE_SIZE.value, _WIDTH.value, _REPEATS.value)


if __name__ == "__main__":
  app.run(main)
