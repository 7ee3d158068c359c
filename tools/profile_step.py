r"""Where the CPU train step's time goes: per-op times from a jax.profiler trace, by layer and kind.

    python tools/profile_step.py [--size=128] [--batch=32] [--dtype=float32] [--top=30]
    python tools/profile_step.py --products          # the Winograd GEMMs alone, f32 vs bf16
    python tools/profile_step.py --adam              # the Adam update alone, native vs optax

Traces `--trace_steps` steps of the benchmark's T_θ-off step (`tools/benchmark.py`'s jax-float32 /
jax-bfloat16 contenders) after warm-up, sums each XLA op's durations from the trace (the
perfetto JSON that `jax.profiler.trace` writes), and prints the `--top` ops with their HLO
shape, then sums by generator layer (forward / backward, from the op's metadata) and by kind
(YNNPACK fusion, oneDNN convolution or matmul, Adam update, other dot, concatenation, copy,
loop fusion; on a GPU cuDNN, cuBLAS, Triton). On a 2-core CPU independent ops may overlap, so the sums are op time, close to
but not exactly the step time.

--products times, for each Winograd layer of 1s-S-deep at `--size` and `--batch`, the forward
GEMM V·U and the kernel-gradient GEMM Vᵀ·dM (as V contracted on its tile axis, and as a
laid-out Vᵀ) in float32 and in bf16 with float32 sums: the figures behind `model.dtype`'s CPU
policy (docs/performance.md).

--adam times `chairgen.optimizer.apply_gradients` alone on 1s-S-deep's parameters at `--size`,
on FC5's kernel and on all of them, with the native one-pass update and with optax's
(CHAIRGEN_FUSED_ADAM=0), state donated as in the train step.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

import benchmark                       # tools/: sets up the repository import path
from chairgen import host_memory       # pylint: disable=g-bad-import-order
from chairgen import inference
from chairgen import models
from chairgen import optimizer
from chairgen import train
from chairgen.models import cpu_kernels
from chairgen.models import variants

_SIZE = flags.DEFINE_integer("size", 128, "Image size.")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "config.model.dtype.")
_STEPS = flags.DEFINE_integer("trace_steps", 3, "Traced steps (after 5 warm-up steps).")
_TOP = flags.DEFINE_integer("top", 30, "Ops to list.")
_GROUP = flags.DEFINE_string("group", None, "List the longest ops of this group of the 'by layer' "
                              "table only (e.g. 'conv3 bwd', 'rest fwd').")
_PRODUCTS = flags.DEFINE_bool("products", False, "Time the Winograd GEMMs alone instead.")
_ADAM = flags.DEFINE_bool("adam", False, "Time the Adam update alone instead.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "--products, --adam: timed runs (median).")
_TRACE_OUT = flags.DEFINE_string("trace_out", None, "Also copy the perfetto trace (.json.gz, "
                                 "opens in ui.perfetto.dev) to this path.")


def trace_file(trace_dir: str) -> str:
  """The perfetto JSON that jax.profiler.trace(create_perfetto_trace=True) wrote."""
  path, = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
  return path


def op_times(trace_dir: str, steps: int) -> dict[str, float]:
  """Milliseconds per step of every complete ('X') event in the trace, by name; on a GPU or
  TPU only the device's events (kernels on its streams), by the HLO op that launched them."""
  with gzip.open(trace_file(trace_dir)) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  device = {e["pid"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"
            and str(e.get("args", {}).get("name", "")).startswith("/device:")}
  total = collections.Counter()
  for e in events:
    if e.get("ph") != "X" or "dur" not in e or (device and e.get("pid") not in device):
      continue
    name = e.get("args", {}).get("hlo_op", e["name"]) if device else e["name"]
    total[name] += e["dur"] / 1000 / steps
  return total


def hlo_lines(hlo_text: str) -> dict[str, str]:
  """Instruction name -> its line in the optimised HLO."""
  lines = {}
  for line in hlo_text.splitlines():
    m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = ", line)
    if m:
      lines.setdefault(m.group(1), line.strip())
  return lines


# (pattern in an HLO instruction's line, kind): the first that matches names the op's kind.
KINDS = (
    (r"__ynn_fusion", "YNNPACK fusion (GEMMs, reductions)"),
    (r'custom_call_target="chairgen_onednn_matmul"', "oneDNN matmul (FFI custom call)"),
    (r'custom_call_target="chairgen_onednn', "oneDNN convolution (FFI custom call)"),
    (r'custom_call_target="chairgen_adam"', "Adam update (FFI custom call)"),
    (r'custom_call_target="__cudnn', "cuDNN convolution"),
    (r'custom_call_target="__cublas', "cuBLAS GEMM"),
    (r"__triton", "Triton fusion (GEMMs)"),
    (r" dot\(", "other dot (Eigen)"),
    (r"concatenate\(", "concatenation"),
    (r" copy\(", "copy"),
)


def classify(line: str) -> tuple[str, str]:
  """(generator layer and pass, kind) of an HLO instruction line."""
  op = (re.search(r'op_name="([^"]*)"', line) or [None, ""])[1]
  layer = re.search(r"Generator\._expand/(\w+)/", op)
  where = layer.group(1) if layer else ("other generator" if "Generator" in op else "rest")
  where += " bwd" if "transpose(" in op else " fwd"
  kind = next((name for pattern, name in KINDS if re.search(pattern, line)),
              "loop fusion / other")
  return where, kind


def profile_step() -> None:
  config = benchmark.jax_config(_DTYPE.value, False, flags.FLAGS.kernels)  # benchmark's flag
  batch = benchmark.synthetic_batch(_SIZE.value, _BATCH.value, 809, 0)
  rss = benchmark.PeakRss()
  contender = benchmark.make_jax_contender(_DTYPE.value, config, _SIZE.value, _BATCH.value, 809,
                                           batch, rss)
  for _ in range(5):
    contender.step()
  times = []
  for _ in range(5):
    start = time.perf_counter()
    contender.step()
    times.append(1e3 * (time.perf_counter() - start))
  print(f"{_SIZE.value} px, batch {_BATCH.value}, {_DTYPE.value}: step "
        f"{sorted(times)[2]:.0f} ms (median of 5, untraced)")
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(_STEPS.value):
        contender.step()
    times_ms = op_times(trace_dir, _STEPS.value)
    if _TRACE_OUT.value:
      shutil.copyfile(trace_file(trace_dir), _TRACE_OUT.value)
      print(f"wrote {_TRACE_OUT.value}")
  lines = hlo_lines(contender.compiled.as_text())
  ops = {name: ms for name, ms in times_ms.items() if name in lines}
  print(f"\nop time per step {sum(ops.values()):.0f} ms; the {_TOP.value} longest ops"
        + (f" of {_GROUP.value!r}:" if _GROUP.value else ":"))
  if _GROUP.value:
    ops = {name: ms for name, ms in ops.items() if classify(lines[name])[0] == _GROUP.value}
  for name, ms in sorted(ops.items(), key=lambda kv: -kv[1])[:_TOP.value]:
    print(f"{ms:8.1f} ms  {lines[name][:150]}")
  by_layer, by_kind = collections.Counter(), collections.Counter()
  for name, ms in ops.items():
    where, kind = classify(lines[name])
    by_layer[where] += ms
    by_kind[kind] += ms
  for title, table in (("by layer", by_layer), ("by kind", by_kind)):
    print(f"\n{title}:")
    for key, ms in table.most_common():
      print(f"{ms:8.1f} ms  {key}")


def winograd_products(size: int, batch: int) -> list[tuple[str, int, int, int, int, tuple]]:
  """(layer, T, N, C, O, dtypes) of the Winograd GEMMs of 1s-S-deep at `size` as `auto` runs
  them: T tile positions, N tiles, C inputs, O outputs, for GEMM inputs of `dtypes` (3x3
  layers large enough take F(4x4) in float32 and F(2x2) in bf16:
  `cpu_kernels.conv3x3_output_tile`)."""
  widths = variants.VARIANTS["1s-S-deep"].streams[0][1]
  hidden = variants.hidden_upconv_widths(widths, size, 1.0)
  layers, c_in, s = [], widths.fc5, variants.BASE_SIZE
  both = ("float32", "bfloat16")
  for i, c_out in enumerate(hidden, start=1):   # upconv i: s -> 2s, then conv i at 2s
    if c_out >= cpu_kernels.WINOGRAD_MIN_CHANNELS:
      layers.append((f"upconv{i}", 36, batch * (s // 2) ** 2, c_in, c_out, both))
    x = jax.ShapeDtypeStruct((batch, 2 * s, 2 * s, c_out), jnp.float32)   # conv i's input
    if cpu_kernels.conv3x3_output_tile(x, "float32") == 4:
      layers.append((f"conv{i}", 36, batch * (s // 2) ** 2, c_out, c_out, ("float32",)))
      layers.append((f"conv{i}", 16, batch * s ** 2, c_out, c_out, ("bfloat16",)))
    else:
      layers.append((f"conv{i}", 16, batch * s ** 2, c_out, c_out, both))
    c_in, s = c_out, 2 * s
  return layers


def time_products() -> None:
  f32 = jnp.float32
  print(f"Winograd GEMMs of 1s-S-deep, {_SIZE.value} px, batch {_BATCH.value}, ms "
        f"(median of {_REPEATS.value}):")
  print(f"{'layer':8s} {'T x N x C x O':>22s} {'':5s} {'V·U':>7s} {'Vᵀ·dM as V':>11s} "
        f"{'Vᵀ·dM as Vᵀ':>12s}")
  for name, t, n, c, o, dtypes in winograd_products(_SIZE.value, _BATCH.value):
    key = jax.random.split(jax.random.key(0), 3)
    v, u, dm = (jax.random.normal(k, shape) for k, shape in
                zip(key, ((t, n, c), (t, c, o), (t, n, o))))
    for dtype in dtypes:
      dtype_label = {"float32": "f32", "bfloat16": "bf16"}[dtype]
      v_, u_, dm_ = (a.astype(dtype) for a in (v, u, dm))
      vt = jnp.swapaxes(v_, 1, 2) + 0      # laid out, outside the timed program
      row = []
      for spec, a, b in (("tnc,tco->tno", v_, u_), ("tnc,tno->tco", v_, dm_),
                         ("tcn,tno->tco", vt, dm_)):
        fn = jax.jit(lambda a, b, spec=spec: jnp.einsum(spec, a, b, preferred_element_type=f32))
        jax.block_until_ready(fn(a, b))            # compile
        row.append(_median_ms(lambda fn=fn, a=a, b=b: jax.block_until_ready(fn(a, b)),
                              _REPEATS.value))
      print(f"{name:8s} {f'{t} x {n} x {c} x {o}':>22s} {dtype_label:5s} "
            + " ".join(f"{ms:>{w}.3f}" for ms, w in zip(row, (7, 11, 12))), flush=True)


def _median_ms(fn, repeats: int) -> float:
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    runs.append(1e3 * (time.perf_counter() - start))
  return sorted(runs)[len(runs) // 2]


def time_adam() -> None:
  config = benchmark.jax_config("float32", False, None)
  model = models.create_model(config.model, num_styles=809, image_size=_SIZE.value)
  shapes = inference.abstract_params(model, 809, train.create_mesh())
  print(f"one Adam update, 1s-S-deep at {_SIZE.value} px, ms (median of {_REPEATS.value}):")
  for what, params in (("fc5 kernel", {"fc5": {"kernel": shapes["fc5"]["kernel"]}}),
                       ("all parameters", shapes)):
    params = jax.tree.map(lambda s: jnp.full(s.shape, 0.01, s.dtype), params)
    grads = jax.tree.map(lambda p: p * 0.5, params)
    row = {}
    for update, switch in (("native", "1"), ("optax", "0")):
      with benchmark.environment({optimizer.ENV_SWITCH: switch}):
        state = train.TrainState.create(apply_fn=None, params=jax.tree.map(jnp.copy, params),
                                        tx=optimizer.create_optimizer(config.optimizer))
        step = jax.jit(lambda s, g: optimizer.apply_gradients(s, g, jnp.asarray(True),
                                                              config.optimizer),
                       donate_argnums=(0,)).lower(state, grads).compile()
      holder = {"state": step(state, grads)}
      def run(holder=holder, step=step):
        holder["state"] = step(holder["state"], grads)
        jax.block_until_ready(holder["state"])
      run()
      row[update] = _median_ms(run, _REPEATS.value)
    print(f"  {what:15s} native {row['native']:8.3f}   optax {row['optax']:8.3f}", flush=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  host_memory.configure()
  print(f"{benchmark.machine_info()}", file=sys.stderr)
  if _PRODUCTS.value:
    time_products()
  elif _ADAM.value:
    time_adam()
  else:
    profile_step()


if __name__ == "__main__":
  app.run(main)
