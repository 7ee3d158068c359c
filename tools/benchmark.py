r"""Train-step speed: chairgen's JAX step against the same network in PyTorch, in one run.

For each `--sizes` entry (SIZExBATCH) it times, interleaved round by round so that machine
load hits every contender alike (JAX in this process, PyTorch in a worker process of its own,
taking turns, with `--pause_s` of idle time before each turn):
  jax-float32      `chairgen.train.make_train_step`, 1s-S-deep, T_θ off (identity θ)
  jax-bfloat16     the same with config.model.dtype='bfloat16' (f32 params, Adam and loss)
  jax-float32+T    the real training step: T_θ sampled and applied on device
  jax-float32[O]   T_θ off with config.model overrides O, for each O in --extra (e.g.
                   kernels=xla: XLA's own convolutions and gradients)
  jax-float32[E]   T_θ off, traced with the environment variables E set, for each E in
                   --extra_env (e.g. CHAIRGEN_FUSED_ADAM=0: optax's Adam update)
  jax-float32[before]  --with_before: XLA's own convolutions and gradients everywhere
                   (model.kernels='xla': the step before the CPU kernels of docs/performance.md)
  torch-eager      tools/torch_reference.py: same network, loss and Adam, channels_last
  torch-compile    the same, forward + loss under torch.compile (backward via AOTAutograd)
Reported per contender: images/s from the median step time over `--steps` timed steps
(after compilation and `--warmup` steps, each step blocked until its outputs are ready),
compile time, the model's FLOPs per step and the rate achieved (XLA's cost analysis of the same
step traced with model.kernels='xla' and optax's Adam, so every backend counts the same work),
the model FLOP utilisation where the device's peak is known (PEAK_TFLOPS, or --peak_tflops),
the time the paper's schedule (500k steps of batch 128) would take at that rate, and memory:
for JAX the XLA buffer assignment of the compiled step (arguments +
outputs + temporaries - donated aliases, `compiled.memory_analysis()`) and, on accelerators,
`memory_stats()['peak_bytes_in_use']` (per size: the process's peak so far, all of that size's
contenders alive, since JAX cannot reset it between them); for every contender the peak resident set size of
its framework's process sampled while it ran. The torch-eager/-compile and T_θ-off JAX rows do the same work; ratios are
JAX / torch-compile. Also: the input pipeline's images/s (in-memory synthetic turntable,
grain batching, cached decode: the path training takes when the data fits in memory; see
tools/benchmark_pipeline.py for PNG decoding from TFDS) and T_θ's images/s.

  python tools/benchmark.py                          # 64x64 and 128x32, prints a table
  python tools/benchmark.py --sizes=32x8 --steps=4 --skip_torch --json=/tmp/b.json
  python tools/benchmark.py --dtypes=float32 --torch_modes=compile --steps=40
  python tools/benchmark.py --skip_torch --extra=kernels=xla   # on a GPU: 128x128, 256x32 too
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import json
import multiprocessing
import os
import resource
import statistics
import sys
import threading
import time
from typing import Callable

from absl import app
from absl import flags
import numpy as np

_TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_TOOLS))   # the repository root: chairgen, experiments

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=wrong-import-position

from chairgen import augment  # pylint: disable=wrong-import-position
from chairgen import host_memory  # pylint: disable=wrong-import-position
from chairgen import input_pipeline  # pylint: disable=wrong-import-position
from chairgen import models  # pylint: disable=wrong-import-position
from chairgen import optimizer  # pylint: disable=wrong-import-position
from chairgen import reports  # pylint: disable=wrong-import-position
from chairgen import train  # pylint: disable=wrong-import-position
from chairgen.models.cpu_kernels import onednn  # pylint: disable=wrong-import-position
from experiments.configs import default as default_configs  # pylint: disable=wrong-import-position

BEFORE = "kernels=xla"

# Dense peak TFLOP/s per computation dtype, by the first key found in the device kind, from the
# vendors' data sheets. float32 counts at TF32 on NVIDIA (JAX's default precision computes
# float32 convolutions and dots with TF32 tensor cores there) and at bf16 passes on TPUs.
PEAK_TFLOPS = {
    "H100 PCIe": {"bfloat16": 756.0, "float32": 378.0},
    "H100": {"bfloat16": 989.4, "float32": 494.7},        # SXM; the H200 has the same cores
    "H200": {"bfloat16": 989.4, "float32": 494.7},
    "A100": {"bfloat16": 312.0, "float32": 156.0},
    "TPU v4": {"bfloat16": 275.0, "float32": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5": {"bfloat16": 459.0, "float32": 459.0},      # v5p
    "TPU v6 lite": {"bfloat16": 918.0, "float32": 918.0},
}

_SIZES = flags.DEFINE_list(
    "sizes", None, "SIZExBATCH entries; default 64x64,128x32 (plus 128x128,256x32 on a GPU).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per contender and size (median).")
_ROUNDS = flags.DEFINE_integer("rounds", 4, "Interleaving rounds the timed steps are split in.")
_WARMUP = flags.DEFINE_integer(
    "warmup", 8, "Untimed steps after compilation (the tuned heap settles within ~8).")
_PAUSE = flags.DEFINE_float(
    "pause_s", 1.0, "Idle seconds before each contender's turn, so that the previous one's "
    "worker threads (OpenMP, XLA's pool) have stopped spinning when its clock starts.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "JAX config.model.dtype values.")
_WITH_AUGMENT = flags.DEFINE_bool("with_augment", True,
                                  "Also time the JAX float32 step with T_θ on (jax-float32+T).")
_TORCH_MODES = flags.DEFINE_list("torch_modes", ["eager", "compile"], "PyTorch contenders.")
_SKIP_TORCH = flags.DEFINE_bool("skip_torch", False, "Time JAX only.")
_IMPORT_TORCH = flags.DEFINE_bool(
    "import_torch", False, "Import torch into this (the JAX) process and run one matmul first, "
    "as the old single-process harness did: with --skip_torch, shows what that costs JAX.")
_NUM_STYLES = flags.DEFINE_integer("num_styles", 809, "One-hot style size (paper's chairs).")
_KERNELS = flags.DEFINE_enum("kernels", None, list(models.layers.KERNELS),
                             "config.model.kernels (default: the config's, 'auto').")
_EXTRA = flags.DEFINE_list(
    "extra", [], "More JAX float32 contenders (T_θ off), one per entry of config.model "
    "overrides joined by '+', e.g. kernels=xla or dtype=bfloat16+kernels=xla: "
    "before/after comparisons.")
_EXTRA_ENV = flags.DEFINE_list(
    "extra_env", [], "More JAX float32 contenders (T_θ off), one per entry of NAME=VALUE "
    "environment settings joined by '+', set while the step is traced, e.g. "
    "CHAIRGEN_FUSED_ADAM=0. Only switches read at trace time act; CHAIRGEN_ONEDNN is read "
    "once per process and is rejected here.")
_WITH_BEFORE = flags.DEFINE_bool(
    "with_before", False, "Add jax-float32[before]: the step before the changes of "
    f"docs/performance.md ({BEFORE}: XLA's convolutions and gradients everywhere).")
_PIPELINE = flags.DEFINE_bool("pipeline", True, "Time the input pipeline.")
_AUGMENT = flags.DEFINE_bool("augment", True, "Time T_θ (augment.sample_theta + apply) alone.")
_HOST_ALLOCATOR = flags.DEFINE_enum(
    "host_allocator", "auto", host_memory.CHOICES, "chairgen.host_memory mode, applied to the "
    "JAX process and to the torch worker alike ('system': glibc's defaults, which re-map "
    "large buffers on every allocation).")
_PEAK_TFLOPS = flags.DEFINE_list(
    "peak_tflops", [], "DTYPE=TFLOPS entries (dense peak of the device, e.g. bfloat16=989,"
    "float32=495), overriding PEAK_TFLOPS for the model FLOP utilisation.")
_JSON = flags.DEFINE_string("json", None, "Write every figure to this JSON file.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic batch and initialisation.")


# ----------------------------------------------------------------------------- helpers

def machine_info() -> dict:
  """CPU model, core count, load and library versions, for the record."""
  return dict(reports.machine_info(), torch=None)


def peak_tflops(device_kind: str, overrides: list[str]) -> dict[str, float]:
  """{dtype: dense peak TFLOP/s} of `device_kind` (PEAK_TFLOPS), updated by DTYPE=TFLOPS."""
  peaks = next((dict(v) for k, v in PEAK_TFLOPS.items() if k in device_kind), {})
  for entry in overrides:
    dtype, sep, value = entry.partition("=")
    try:
      peaks[dtype] = float(value) if sep and dtype in ("float32", "bfloat16") else None
    except ValueError:
      peaks[dtype] = None
    if peaks[dtype] is None or peaks[dtype] <= 0:
      raise app.UsageError(f"--peak_tflops entry {entry!r}: expected float32=TFLOPS or "
                           "bfloat16=TFLOPS with a positive number")
  return peaks


@functools.cache
def paper_schedule_images() -> int:
  """Images the paper's schedule trains on: its steps times its batch (config 'paper')."""
  config = default_configs.get_config("paper")
  return config.optimizer.num_steps * config.train.batch_size


def load_average() -> float:
  """1-minute load average (what to check before trusting a figure on a shared machine)."""
  return os.getloadavg()[0]


class PeakRss:
  """Samples this process's resident set size every `interval` s while active; keeps the max."""

  def __init__(self, interval: float = 0.01):
    import psutil  # pylint: disable=g-import-not-at-top
    self._process = psutil.Process()
    self._interval = interval
    self.peak = 0
    self._active = threading.Event()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self):
    while not self._stop.is_set():
      if self._active.wait(0.05):
        self.peak = max(self.peak, self._process.memory_info().rss)
        time.sleep(self._interval)

  @contextlib.contextmanager
  def sampling(self):
    self._active.set()
    try:
      yield
    finally:
      self._active.clear()
      self.peak = max(self.peak, self._process.memory_info().rss)

  def close(self):
    self._stop.set()
    self._thread.join()


def synthetic_batch(size: int, batch: int, num_styles: int, seed: int) -> dict[str, np.ndarray]:
  """A batch in the pipeline's format: an ellipse of random colour on white, random views."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size] / size - 0.5
  radii = rng.uniform(0.2, 0.45, (batch, 2))
  mask = ((xx / radii[:, :1, None]) ** 2 + (yy / radii[:, 1:, None]) ** 2 <= 1.0)[..., None]
  colour = rng.integers(0, 256, (batch, 1, 1, 3))
  image = np.where(mask, colour, 255).astype(np.uint8)
  azimuth = rng.uniform(0, 360, batch).astype(np.float32)
  elevation = rng.choice([20.0, 30.0], batch).astype(np.float32)
  return {"image": image, "mask": mask.astype(np.uint8),
          "style": rng.integers(0, num_styles, batch).astype(np.int32),
          "view": input_pipeline.view_encoding(azimuth, elevation)}


@dataclasses.dataclass
class Contender:
  """One thing to time: `step()` runs one blocked train step."""
  name: str
  step: Callable[[], None]
  compile_s: float
  memory: dict
  times: list = dataclasses.field(default_factory=list)
  # Minor page faults and system CPU seconds of this process over the timed steps: what
  # chairgen.host_memory is about (large buffers mapped and zeroed anew on every step).
  faults: int = 0
  system_s: float = 0.0
  flops_per_step: float | None = None   # model_flops(); torch's: those of the same JAX step

  def run(self, count: int, rss: PeakRss) -> tuple[list[float], int, int, float]:
    """`count` timed steps: (seconds of each, peak RSS, minor page faults, system seconds)."""
    times = []
    rss.peak = 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    with rss.sampling():
      for _ in range(count):
        start = time.perf_counter()
        self.step()
        times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (times, rss.peak, after.ru_minflt - before.ru_minflt,
            after.ru_stime - before.ru_stime)

  def summary(self, batch: int) -> dict:
    median = statistics.median(self.times)
    steps = len(self.times)
    return {"images_per_s": batch / median, "median_step_s": median,
            "min_step_s": min(self.times), "steps_timed": steps,
            "compile_s": self.compile_s, "memory": self.memory,
            "page_faults_per_step": self.faults / steps,
            "system_s_per_step": self.system_s / steps,
            "model_flops_per_step": self.flops_per_step,
            "achieved_tflops": (self.flops_per_step / median / 1e12
                                if self.flops_per_step else None)}


# ----------------------------------------------------------------------------- JAX

def parse_overrides(text: str) -> dict[str, str]:
  """'kernels=xla+dtype=bfloat16' -> {'kernels': 'xla', 'dtype': 'bfloat16'}."""
  overrides = {}
  for item in filter(None, text.split("+")):
    key, sep, value = item.partition("=")
    if not sep or key not in models.default_config():
      raise app.UsageError(f"--extra entry {text!r}: expected config.model overrides "
                           f"key=value joined by '+', keys {sorted(models.default_config())}")
    overrides[key] = value
  return overrides


def parse_environment(text: str) -> dict[str, str]:
  """'A=1+B=x' -> {'A': '1', 'B': 'x'}."""
  settings = {}
  for item in filter(None, text.split("+")):
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise app.UsageError(f"--extra_env entry {text!r}: expected NAME=VALUE joined by '+'")
    if key == onednn.ENV_SWITCH:
      raise app.UsageError(f"--extra_env cannot switch {key}: it is read once per process; "
                           f"run the benchmark twice, with {key}=0 in front of the second")
    settings[key] = value
  return settings


@contextlib.contextmanager
def environment(settings: dict[str, str]):
  """os.environ with `settings` applied, restored afterwards."""
  saved = {key: os.environ.get(key) for key in settings}
  os.environ.update(settings)
  try:
    yield
  finally:
    for key, value in saved.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


def jax_config(dtype: str, with_augment: bool, kernels: str | None,
               overrides: dict[str, str] | None = None):
  config = default_configs.get_config("paper")
  config.model.dtype = dtype
  config.augment.enabled = with_augment
  if kernels:
    config.model.kernels = kernels
  for key, value in (overrides or {}).items():
    config.model[key] = value
  return config


def make_jax_contender(name: str, config, size: int, batch_size: int, num_styles: int,
                       batch: dict[str, np.ndarray], rss: PeakRss) -> Contender:
  """Compiles chairgen's train step for `config` and returns a contender stepping it."""
  mesh = train.create_mesh()
  model = models.create_model(config.model, num_styles=num_styles, image_size=size)
  state = train.create_train_state(config, model, mesh, num_styles, size)
  step_fn = train.make_train_step(config, model, mesh, num_styles)
  device_batch = input_pipeline.shard_batch(batch, NamedSharding(mesh, P(train.DATA_AXIS)))
  start = time.perf_counter()
  compiled = step_fn.lower(state, device_batch).compile()
  compile_s = time.perf_counter() - start
  memory = {}
  analysis = compiled.memory_analysis()
  if analysis is not None:
    memory["xla_buffers_bytes"] = int(
        analysis.argument_size_in_bytes + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
    memory["xla_temp_bytes"] = int(analysis.temp_size_in_bytes)
  flops = model_flops(config, state, device_batch, mesh, num_styles, size)
  holder = {"state": state}

  def step():
    holder["state"], metrics = compiled(holder["state"], device_batch)
    jax.block_until_ready((holder["state"], metrics))

  contender = Contender(name, step, compile_s, memory, flops_per_step=flops)
  contender.compiled = compiled  # type: ignore[attr-defined]  # for tools/profile_step.py
  del rss, batch_size
  return contender


_MODEL_FLOPS: dict[tuple, float] = {}   # by reference step: contenders differing only in
                                        # kernels or environment share one lowering


def model_flops(config, state, device_batch, mesh, num_styles: int, size: int) -> float:
  """FLOPs of one train step of `config`: XLA's cost analysis of the step traced with XLA's
  own convolutions and optax's Adam (custom calls, which `auto` and the one-pass Adam use on
  the CPU, count no FLOPs), so that every backend and kernel choice counts the same work."""
  reference = config.copy_and_resolve_references()
  reference.model.kernels = "xla"
  key = (reference.to_json_best_effort(), num_styles, size,
         tuple((k, v.shape) for k, v in sorted(device_batch.items())))
  if key not in _MODEL_FLOPS:
    _MODEL_FLOPS[key] = _lowered_flops(reference, state, device_batch, mesh, num_styles, size)
  return _MODEL_FLOPS[key]


def _lowered_flops(reference, state, device_batch, mesh, num_styles: int, size: int) -> float:
  model = models.create_model(reference.model, num_styles=num_styles, image_size=size)
  with environment({optimizer.ENV_SWITCH: "0"}):
    step_fn = train.make_train_step(reference, model, mesh, num_styles)
    # The step applies the state's model: the reference's here.
    analysis = step_fn.lower(state.replace(apply_fn=model.apply), device_batch).cost_analysis()
  if isinstance(analysis, (list, tuple)):   # older jax: one dict per computation
    analysis = analysis[0]
  return float(analysis["flops"])


def device_peak_bytes() -> int | None:
  """The accelerator's peak bytes in use since the process started (None on the CPU): one
  figure for all contenders alive so far, since JAX cannot reset it between them."""
  stats = jax.devices()[0].memory_stats()
  return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


# ----------------------------------------------------------------------------- PyTorch

def torch_info() -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def _torch_worker_main(conn, host_allocator: str) -> None:
  """Serves TorchWorker's calls: ('info',), ('build', kwargs), ('run', name, count), ('close',)."""
  host_memory.configure(host_allocator)   # before torch starts its threads
  contenders: dict[str, Contender] = {}
  rss = PeakRss()
  while True:
    command, *args = conn.recv()
    try:
      if command == "close":
        break
      if command == "info":
        reply = {**torch_info(), "torch_host_allocator": host_memory.applied()}
      elif command == "build":
        c = make_torch_contender(**args[0])
        contenders[c.name] = c
        reply = (c.name, c.compile_s, c.memory)
      elif command == "run":
        name, count = args
        reply = contenders[name].run(count, rss)
      else:
        raise ValueError(f"unknown worker command {command!r}")
    except Exception as e:  # pylint: disable=broad-except
      reply = RuntimeError(f"torch worker, {command}: {type(e).__name__}: {e}")
    conn.send(reply)
  rss.close()


class TorchWorker:
  """The PyTorch contenders, in a process of their own.

  Measured here: importing torch into the JAX process (its OpenMP and MKL runtimes) slowed
  the JAX step by 6-10 %, so each framework gets its own process and they take turns; the
  idle one waits on a pipe.
  """

  def __init__(self, host_allocator: str = "system"):
    ctx = multiprocessing.get_context("spawn")
    self._conn, child = ctx.Pipe()
    self._process = ctx.Process(target=_torch_worker_main, args=(child, host_allocator),
                                daemon=True)
    self._process.start()

  def call(self, *message):
    self._conn.send(message)
    reply = self._conn.recv()
    if isinstance(reply, BaseException):
      raise reply
    return reply

  def build(self, **kwargs) -> Contender:
    name, compile_s, memory = self.call("build", kwargs)
    return RemoteContender(name, None, compile_s, memory, worker=self)  # type: ignore[arg-type]

  def close(self) -> None:
    if self._process.is_alive():
      self._conn.send(("close",))
      self._process.join(timeout=30)


@dataclasses.dataclass
class RemoteContender(Contender):
  """A contender living in a TorchWorker: its steps run (and are timed) there."""
  worker: TorchWorker | None = None

  def run(self, count: int, rss: PeakRss) -> tuple[list[float], int, int, float]:
    del rss  # the worker samples its own process
    return self.worker.call("run", self.name, count)


def make_torch_contender(mode: str, size: int, num_styles: int, batch: dict[str, np.ndarray],
                         seed: int) -> Contender:
  import torch  # pylint: disable=g-import-not-at-top
  if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)
  import torch_reference  # pylint: disable=g-import-not-at-top

  spec = torch_reference.Spec(num_styles=num_styles, theta_dim=augment.THETA_DIM,
                              image_size=size)
  model, optimizer = torch_reference.create(spec, channels_last=True, seed=seed)
  step_fn = torch_reference.make_train_step(model, optimizer, num_styles,
                                            compile_model=(mode == "compile"))
  theta = np.zeros((len(batch["style"]), augment.THETA_DIM), np.float32)
  torch_batch = torch_reference.to_torch_batch(batch, theta)

  def step():
    loss = step_fn(torch_batch)
    if not torch.isfinite(loss):
      raise FloatingPointError(f"torch-{mode}: non-finite loss {float(loss)}")

  start = time.perf_counter()
  step()                                   # compiles under torch.compile
  first = time.perf_counter() - start
  start = time.perf_counter()
  step()
  second = time.perf_counter() - start
  return Contender(f"torch-{mode}", step, max(0.0, first - second),
                   {"parameters": torch_reference.num_parameters(model)})


# ----------------------------------------------------------------------------- runs

def _shares(total: int, parts: int) -> list[int]:
  """`total` split into `parts` counts that differ by at most one, larger first."""
  return [total // parts + (r < total % parts) for r in range(parts)]


def _rotated(items: list, r: int) -> list:
  """`items` rotated left by r: round r's order, so no contender always follows the same one."""
  r %= len(items)
  return items[r:] + items[:r]


def time_interleaved(contenders: list[Contender], steps: int, rounds: int, warmup: int,
                     rss: PeakRss, pause_s: float = 0.0) -> None:
  """Warm-up, then `rounds` rounds; in each every contender runs its share of timed steps.

  The order rotates every round, so no contender always follows the same one.  The warm-up
  alternates too (two rounds of half the steps each): the tuned heap (chairgen.host_memory)
  settles only once it has seen the executables take turns, not each one alone.
  """
  for r, count in enumerate(_shares(warmup, 2)):
    for c in _rotated(contenders, r):
      if count:
        c.run(count, rss)
  peaks = {c.name: 0 for c in contenders}
  for r, count in enumerate(_shares(steps, rounds)):
    for c in _rotated(contenders, r):
      time.sleep(pause_s)
      times, peak, faults, system_s = c.run(count, rss)
      c.times.extend(times)
      c.faults += faults
      c.system_s += system_s
      peaks[c.name] = max(peaks[c.name], peak)
  for c in contenders:
    c.memory["process_peak_rss_bytes"] = int(peaks[c.name])


def jax_parameter_count(size: int, num_styles: int) -> int:
  model = models.create_model(models.default_config(), num_styles=num_styles, image_size=size)
  shapes = jax.eval_shape(
      lambda: model.init({"params": jax.random.key(0), "sample": jax.random.key(1)},
                         np.zeros((1, num_styles), np.float32), np.zeros((1, 4), np.float32),
                         np.zeros((1, augment.THETA_DIM), np.float32)))
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes["params"])))


def benchmark_size(size: int, batch_size: int, torch_worker: TorchWorker | None,
                   rss: PeakRss) -> dict:
  """All contenders at one size; returns the JSON record of that size."""
  num_styles = _NUM_STYLES.value
  batch = synthetic_batch(size, batch_size, num_styles, _SEED.value)
  record = {"image_size": size, "batch_size": batch_size,
            "jax_parameters": jax_parameter_count(size, num_styles),
            "load_before": load_average(), "contenders": {}}
  print(f"\n== {size} px, batch {batch_size}: 1s-S-deep, {record['jax_parameters']:,} JAX "
        f"parameters, {num_styles} styles (load {record['load_before']:.2f})", flush=True)
  contenders = []
  for dtype in _DTYPES.value:
    config = jax_config(dtype, False, _KERNELS.value)
    contenders.append(make_jax_contender(f"jax-{dtype}", config, size, batch_size, num_styles,
                                         batch, rss))
    print(f"  compiled jax-{dtype} in {contenders[-1].compile_s:.1f} s", flush=True)
  # (name, config.model overrides, environment while tracing)
  extra = [(f"jax-float32[{text}]", text, {}) for text in _EXTRA.value]
  if _WITH_BEFORE.value:
    extra.append(("jax-float32[before]", BEFORE, {}))
  extra += [(f"jax-float32[{text}]", "", parse_environment(text)) for text in _EXTRA_ENV.value]
  for name, overrides, settings in extra:
    config = jax_config("float32", False, None, parse_overrides(overrides))
    with environment(settings):
      contenders.append(make_jax_contender(name, config, size, batch_size, num_styles, batch,
                                           rss))
    print(f"  compiled {name} in {contenders[-1].compile_s:.1f} s", flush=True)
  if _WITH_AUGMENT.value:
    config = jax_config("float32", True, _KERNELS.value)
    contenders.append(make_jax_contender("jax-float32+T", config, size, batch_size, num_styles,
                                         batch, rss))
    print(f"  compiled jax-float32+T in {contenders[-1].compile_s:.1f} s", flush=True)
  if torch_worker is not None:
    for mode in _TORCH_MODES.value:
      contenders.append(torch_worker.build(mode=mode, size=size, num_styles=num_styles,
                                           batch=batch, seed=_SEED.value))
      params = contenders[-1].memory["parameters"]
      print(f"  built torch-{mode} ({params:,} parameters) in "
            f"{contenders[-1].compile_s:.1f} s", flush=True)
      if params != record["jax_parameters"]:
        raise AssertionError(f"torch reference has {params} parameters, the JAX model "
                             f"{record['jax_parameters']}: the networks differ")
  time_interleaved(contenders, _STEPS.value, _ROUNDS.value, _WARMUP.value, rss,
                   _PAUSE.value)
  same_work = next((c.flops_per_step for c in contenders if c.name == "jax-float32"), None)
  peaks = peak_tflops(jax.devices()[0].device_kind, _PEAK_TFLOPS.value)
  for c in contenders:
    if c.flops_per_step is None:            # torch: the network of the T_θ-off JAX step
      c.flops_per_step = same_work
    summary = c.summary(batch_size)
    peak = peaks.get(contender_dtype(c.name))
    summary["mfu"] = (summary["achieved_tflops"] / peak
                      if peak and summary["achieved_tflops"] else None)
    summary["paper_schedule_hours"] = paper_schedule_images() / summary["images_per_s"] / 3600
    record["contenders"][c.name] = summary
  record["peak_tflops"] = peaks
  record["device_peak_bytes_in_use"] = device_peak_bytes()
  record["load_after"] = load_average()
  record["ratios"] = ratios(record["contenders"])
  return record


def contender_dtype(name: str) -> str:
  """The computation dtype of a contender by its name (jax-bfloat16, jax-float32[dtype=...])."""
  return "bfloat16" if "bfloat16" in name else "float32"


def ratios(results: dict) -> dict:
  """images/s of each JAX contender over each torch contender's (the same work for T_θ off)."""
  out = {}
  for j, jr in results.items():
    for t, tr in results.items():
      if j.startswith("jax-") and t.startswith("torch-"):
        out[f"{j} / {t}"] = jr["images_per_s"] / tr["images_per_s"]
  return out


def benchmark_augment(size: int, batch_size: int) -> dict:
  """images/s of T_θ alone: jitted sample_theta + apply on a batch of floats."""
  config = augment.default_config()

  @jax.jit
  def run(key, image, mask):
    theta = augment.sample_theta(key, image.shape[0], config)
    return augment.apply(theta, image, mask)

  batch = synthetic_batch(size, batch_size, 1, 0)
  image = jax.device_put(batch["image"].astype(np.float32) / 255.0)
  mask = jax.device_put(batch["mask"].astype(np.float32))
  key = jax.random.key(0)
  jax.block_until_ready(run(key, image, mask))
  times = []
  for i in range(20):
    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.fold_in(key, i), image, mask))
    times.append(time.perf_counter() - start)
  median = statistics.median(times)
  return {"images_per_s": batch_size / median, "median_batch_s": median}


def benchmark_pipeline(size: int, batch_size: int, batches: int = 30) -> dict:
  """images/s of `input_pipeline.Pipeline` over an in-memory turntable (decode cached)."""
  num_models, azimuths = 24, [int(i * 360 / 31) for i in range(31)]
  records = []
  rng = np.random.default_rng(0)
  for m in range(num_models):
    item = synthetic_batch(size, 1, 1, m)
    for e in (20.0, 30.0):
      for a in azimuths:
        records.append({"image": item["image"][0], "mask": item["mask"][0], "model_index": m,
                        "azimuth": float(a), "elevation": e, "class": 0,
                        "model_name": f"synthetic{m:03d}".encode()})
  rng.shuffle(records)
  config = input_pipeline.default_config()
  config.cache = "yes"
  pipeline = input_pipeline.Pipeline([records], config, seed=0)
  iterator = pipeline.train_iterator(batch_size)
  for _ in range(3):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  seconds = time.perf_counter() - start
  return {"images_per_s": batches * batch_size / seconds, "batches": batches,
          "source": "in-memory synthetic turntable, config.cache='yes', grain threads "
                    f"{config.num_threads}"}


def duration(seconds: float) -> str:
  """'52 min', '7.5 h', '18.2 d': the paper's schedule at a measured rate."""
  if seconds < 2 * 3600:
    return f"{seconds / 60:.0f} min"
  if seconds < 48 * 3600:
    return f"{seconds / 3600:.1f} h"
  return f"{seconds / 86400:.1f} d"


def print_table(results: dict) -> None:
  print("\n" + "=" * 134)
  info = results["machine"]
  print(f"{info['cpu']} ({' '.join(info.get('cpu_isa', []))}), {info['cpu_count']} cores, "
        f"jax {info['jax']} ({info['backend']}: {info.get('device_kind')}), "
        f"torch {info.get('torch')}")
  header = (f"{'size':>5} {'batch':>5}  {'contender':<24} {'images/s':>9} {'step ms':>8} "
            f"{'compile s':>9} {'TFLOP/s':>7} {'MFU':>5} {'paper run':>9} {'XLA MiB':>8} "
            f"{'RSS MiB':>8} {'faults':>7} {'sys ms':>6}  {'vs torch-compile':>16}")
  print(header)
  print("-" * len(header))
  for record in results["sizes"]:
    base = record["contenders"].get("torch-compile")
    for name, r in record["contenders"].items():
      mem = r["memory"]
      xla = f"{mem['xla_buffers_bytes'] / 2**20:8.0f}" if "xla_buffers_bytes" in mem else " " * 8
      tflops = f"{r['achieved_tflops']:7.3g}" if r.get("achieved_tflops") else " " * 7
      mfu = f"{r['mfu']:5.1%}" if r.get("mfu") else " " * 5
      ratio = (f"{r['images_per_s'] / base['images_per_s']:16.2f}" if base else "")
      print(f"{record['image_size']:>5} {record['batch_size']:>5}  {name:<24} "
            f"{r['images_per_s']:9.1f} {r['median_step_s'] * 1e3:8.1f} {r['compile_s']:9.1f} "
            f"{tflops} {mfu} {duration(3600 * r['paper_schedule_hours']):>9} "
            f"{xla} {mem['process_peak_rss_bytes'] / 2**20:8.0f} "
            f"{r['page_faults_per_step']:7.0f} {r['system_s_per_step'] * 1e3:6.0f}  {ratio}")
    device_peak = record.get("device_peak_bytes_in_use")
    print(f"{'':>12} load average {record['load_before']:.2f} before, "
          f"{record['load_after']:.2f} after"
          + (f"; device peak {device_peak / 2**30:.2f} GiB in use so far" if device_peak else ""))
  for key in ("pipeline", "augment"):
    for size, r in results.get(key, {}).items():
      print(f"{key:>8} {size:>5} px: {r['images_per_s']:9.1f} images/s")
  print("TFLOP/s: the model's FLOPs per step (XLA's cost analysis, model.kernels='xla') over "
        "the median step; MFU: that over the device's dense peak for the contender's dtype")
  print(f"paper run: {paper_schedule_images():,} images (the paper's 500k steps of batch 128) "
        "at this rate; faults, sys ms: minor page faults and system CPU ms per timed step")
  print("=" * 134)


def default_sizes() -> list[str]:
  sizes = ["64x64", "128x32"]
  if jax.default_backend() in ("gpu", "tpu"):
    sizes += ["128x128", "256x32"]
  return sizes


def parse_sizes(entries: list[str]) -> list[tuple[int, int]]:
  parsed = []
  for entry in entries:
    try:
      size, batch = (int(v) for v in entry.lower().split("x"))
    except ValueError:
      raise app.UsageError(f"--sizes entry {entry!r} is not SIZExBATCH, e.g. 128x32") from None
    parsed.append((size, batch))
  return parsed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  for text in _EXTRA_ENV.value:   # fail before any compilation
    parse_environment(text)
  host_allocator = host_memory.configure(_HOST_ALLOCATOR.value)   # before JAX's first step
  if _STEPS.value < 1 or _ROUNDS.value < 1:
    raise app.UsageError("--steps and --rounds must be >= 1")
  if _IMPORT_TORCH.value:
    import torch  # pylint: disable=g-import-not-at-top
    torch.ones(512, 512) @ torch.ones(512, 512)  # starts its OpenMP / MKL runtimes
  torch_worker = None
  if not _SKIP_TORCH.value:
    if importlib.util.find_spec("torch") is None:
      print("torch is not installed (pip install torch==2.13.0, CPU build); timing JAX only. "
            "Pass --skip_torch to silence this.", file=sys.stderr)
    else:
      torch_worker = TorchWorker(host_allocator)
  results = {"machine": machine_info(), "flags": {
      "steps": _STEPS.value, "rounds": _ROUNDS.value, "warmup": _WARMUP.value,
      "num_styles": _NUM_STYLES.value, "kernels": _KERNELS.value,
      "memory_note": "xla_buffers_bytes: compiled.memory_analysis() of the step; "
                     "process_peak_rss_bytes: psutil RSS sampled every 10 ms while the "
                     "contender ran (the process of its framework: JAX in this one, torch in a worker)."}, "sizes": []}
  results["machine"]["host_allocator"] = host_allocator
  if torch_worker is not None:
    results["machine"].update(torch_worker.call("info"))
  rss = PeakRss()
  sizes = parse_sizes(_SIZES.value or default_sizes())
  try:
    for i, (size, batch_size) in enumerate(sizes):
      results["sizes"].append(benchmark_size(size, batch_size, torch_worker, rss))
      if _AUGMENT.value:
        results.setdefault("augment", {})[str(size)] = benchmark_augment(size, batch_size)
      if _PIPELINE.value:
        results.setdefault("pipeline", {})[str(size)] = benchmark_pipeline(size, batch_size)
      if _JSON.value and i + 1 < len(sizes):   # a run cut short keeps its finished sizes
        write_json(_JSON.value, dict(results, complete=False,
                                     sizes_left=[f"{s}x{b}" for s, b in sizes[i + 1:]]))
  finally:
    rss.close()
    if torch_worker is not None:
      torch_worker.close()
  print_table(results)
  for record in results["sizes"]:
    for key, value in record["ratios"].items():
      print(f"{record['image_size']} px x {record['batch_size']}: {key} = {value:.2f}")
  if _JSON.value:
    write_json(_JSON.value, dict(results, complete=True))
    print(f"wrote {_JSON.value}")


def write_json(path: str, results: dict) -> None:
  """Replaces `path` whole (`reports.write_text`: atomic), so it is never half written."""
  reports.write_text(path, json.dumps(results, indent=2))


if __name__ == "__main__":
  app.run(main)
