r"""Prints how fast turntables are rendered and written to disk as PNG (not a test).

  python tools/benchmark_turntables.py [--image_sizes=64,128] [--num_models=64] \
      [--num_workers=2] [--family=chairs] [--layout=aubry]

For each image size: images/s of the full path of tools/make_turntables.py (mesh, render,
PNG encode, write, keypoints file, atomic rename) with `num_workers` processes, timed after the
workers have created their renderers, and the rate their CPU time would allow on idle
cores (the machine may be shared); and single-process figures split into render only and
render + PNG encode. The machine's load average is printed alongside: figures taken on a busy
machine are lower bounds. Targets from the issue: 1000 images/s at 64 px, 500 at 128 px.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import tempfile
import time

from absl import app
from absl import flags
from PIL import Image

from chairgen import procedural
from chairgen.procedural import turntables

_SIZES = flags.DEFINE_list("image_sizes", ["64", "128"], "Image sizes to measure.")
_NUM_MODELS = flags.DEFINE_integer("num_models", 64, "Models per measurement.", lower_bound=2)
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Worker processes.", lower_bound=1)
_FAMILY = flags.DEFINE_enum("family", "chairs", list(procedural.FAMILIES), "Object family.")
_LAYOUT = flags.DEFINE_enum("layout", "aubry", list(turntables.LAYOUTS), "Output layout.")
TARGETS = {64: 1000, 128: 500}

_renderer = None


def _init_worker(image_size: int) -> None:
  global _renderer
  os.environ.setdefault("LP_NUM_THREADS", "0")
  _renderer = procedural.Renderer(image_size)


def _ready(_) -> None:
  time.sleep(0.3)  # Long enough that every worker picks up one: all are initialised.


def _write(task) -> float:
  """Writes one model; returns the CPU seconds this worker spent on it."""
  family, index, out_dir, layout = task
  start = time.process_time()
  turntables.write_model(_renderer, procedural.make_object(family, index), out_dir, layout)
  return time.process_time() - start


def _load() -> str:
  return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _pool_rate(size: int, family: str, layout: str, num_models: int,
               workers: int) -> tuple[float, float]:
  """(images/s measured, images/s the workers' CPU time allows on `workers` idle cores)."""
  out_dir = tempfile.mkdtemp(prefix="chairgen_bench_")
  try:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(size,)) as pool:
      pool.map(_ready, range(workers), chunksize=1)
      tasks = [(family, i, out_dir, layout) for i in range(num_models)]
      start = time.perf_counter()
      cpu_seconds = sum(pool.map(_write, tasks, chunksize=1))
      seconds = time.perf_counter() - start
  finally:
    shutil.rmtree(out_dir, ignore_errors=True)
  images = num_models * len(turntables.views_for(layout))
  return images / seconds, images / (cpu_seconds / workers)


def _single_rates(size: int, family: str, layout: str) -> tuple[float, float]:
  os.environ.setdefault("LP_NUM_THREADS", "0")
  renderer = procedural.Renderer(size)
  objs = [procedural.make_object(family, i) for i in range(8)]
  angles = [(v.azimuth, v.elevation) for v in turntables.views_for(layout)]
  renderer.render_views(objs[0], angles)  # Warm-up.
  start = time.perf_counter()
  views = [v for obj in objs for v in renderer.render_views(obj, angles)]
  render_s = time.perf_counter() - start
  start = time.perf_counter()
  for v in views:
    Image.fromarray(v.rgb).save(io.BytesIO(), format="PNG",
                                compress_level=turntables.PNG_COMPRESS_LEVEL)
  encode_s = time.perf_counter() - start
  return len(views) / render_s, len(views) / (render_s + encode_s)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _LAYOUT.value == "aubry" and _FAMILY.value != "chairs":
    raise app.UsageError("--layout=aubry holds chairs only; use --layout=r2n2.")
  print(f"cpus={os.cpu_count()} load average before: {_load()}")
  for size in map(int, _SIZES.value):
    workers = _NUM_WORKERS.value
    rate, idle_rate = _pool_rate(size, _FAMILY.value, _LAYOUT.value, _NUM_MODELS.value, workers)
    render, encode = _single_rates(size, _FAMILY.value, _LAYOUT.value)
    target = TARGETS.get(size)
    verdict = "" if target is None else (
        f" (target {target}: {'met' if rate >= target else 'MISSED'})")
    print(f"{size:4d} px  {workers} workers, written to disk: {rate:7.0f} images/s{verdict}")
    print(f"         CPU time of the workers allows {idle_rate:7.0f} images/s on {workers} "
          "idle cores")
    print(f"         1 process: render {render:6.0f} images/s, render + PNG encode "
          f"{encode:6.0f} images/s   [load {_load()}]")

if __name__ == "__main__":
  app.run(main)
