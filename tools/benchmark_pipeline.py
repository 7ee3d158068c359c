r"""Images per second of the input pipeline at 64 and 128 px.

Measures `chairgen.input_pipeline` end to end: `tfds.data_source` over array_record, PNG
decoding (or the in-memory cache), grain's shuffle/batch/prefetch, the view encoding. Each
pass times `--batches` batches after a warm-up; the figure is the median over `--passes`.

By default it reads a synthetic turntable dataset (flat-shaded box chairs on white, written
once with the project's TFDS base builder into `--data_dir`), so it runs without the renderer;
`--names=...` reads real builds instead (a missing procedural one is rendered first).

  python tools/benchmark_pipeline.py --sizes=64,128 --batch_size=64
  python tools/benchmark_pipeline.py \
      --names=procedural_turntables/tiny,procedural_turntables/tiny_128 --data_dir=DIR
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from chairgen import input_pipeline

_SIZES = flags.DEFINE_list("sizes", ["64", "128"], "Image sizes to measure.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Global batch size.")
_BATCHES = flags.DEFINE_integer("batches", 40, "Batches per timed pass.")
_PASSES = flags.DEFINE_integer("passes", 5, "Timed passes; the median is reported.")
_CACHE = flags.DEFINE_list("cache", ["yes", "no"], "config.cache modes to measure.")
_THREADS = flags.DEFINE_integer("num_threads", 2, "config.num_threads.")
_WORKERS = flags.DEFINE_integer("num_workers", 0, "config.num_workers.")
_NAMES = flags.DEFINE_list(
    "names", [], "TFDS names to read instead of the synthetic data (--sizes is then unused), "
    "e.g. procedural_turntables/tiny,procedural_turntables/tiny_128.")
_MODELS = flags.DEFINE_integer("synthetic_models", 60, "Models in the synthetic dataset.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: a temp dir).")

_AZIMUTHS = [int(i * 360 / 31) for i in range(31)]
_ELEVATIONS = (20.0, 30.0)


def _box_chair(rng: np.random.Generator, size: int, azimuth: float
               ) -> tuple[np.ndarray, np.ndarray]:
  """A seat, a back and four legs as shaded rectangles on white: PNGs that compress like renders."""
  s = size
  image = np.full((s, s, 3), 255, np.uint8)
  mask = np.zeros((s, s), np.uint8)
  color = rng.integers(40, 200, 3)
  squeeze = 0.6 + 0.4 * abs(np.cos(np.deg2rad(azimuth)))
  half = int(s * 0.3 * squeeze)
  c = s // 2
  parts = [(c - half, c + half, int(s * 0.5), int(s * 0.58)),                  # Seat.
           (c - half, c + half, int(s * 0.15), int(s * 0.5))]                   # Back.
  for x in (c - half, c + half - max(1, s // 32)):                             # Legs.
    parts.append((x, x + max(1, s // 32), int(s * 0.58), int(s * 0.9)))
  ramp = np.linspace(0.7, 1.1, s)[None, :, None]
  for x0, x1, y0, y1 in parts:
    shade = np.clip(color[None, None] * ramp[:, x0:x1], 0, 255).astype(np.uint8)
    image[y0:y1, x0:x1] = shade
    mask[y0:y1, x0:x1] = 1
  return image, mask


def _synthetic_builder_cls():
  """A TFDS builder over box chairs, on the builders' shared base (same features, same format)."""
  from chairgen.datasets import common  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  class PipelineBenchmarkTurntables(common.TurntableBuilder, skip_registration=True):
    """Synthetic turntables for the pipeline benchmark."""

    BUILDER_CONFIGS = [common.SizedConfig(name=str(s), image_size=s) for s in (32, 64, 128, 256)]

    def _info(self):  # No package folder with metadata files: build the info directly.
      size = self.builder_config.image_size
      return tfds.core.DatasetInfo(builder=self, features=common.features(size),
                                   disable_shuffling=True)

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      size = self.builder_config.image_size
      for m in range(_MODELS.value):
        rng = np.random.default_rng(m)
        for e_i, el in enumerate(_ELEVATIONS):
          for a_i, az in enumerate(_AZIMUTHS):
            image, mask = _box_chair(rng, size, az)
            yield f"{m:04d}_{e_i}_{a_i:02d}", common.make_example(
                image=image, mask=mask, model_index=m, model_name=f"box{m:04d}",
                class_name="chair", azimuth=az, elevation=el,
                view_index=e_i * len(_AZIMUTHS) + a_i)

  return PipelineBenchmarkTurntables


def _pipeline(dataset: str | int, cache: str, data_dir: str) -> input_pipeline.Pipeline:
  """A pipeline over TFDS name `dataset`, or over the synthetic set when it is a size."""
  config = input_pipeline.default_config()
  config.cache = cache
  config.num_threads = _THREADS.value
  config.num_workers = _WORKERS.value
  if isinstance(dataset, str):
    config.name = dataset
    config.data_dir = data_dir
    return input_pipeline.create_pipeline(config, seed=0)
  size = dataset
  builder = _synthetic_builder_cls()(config=str(size), data_dir=data_dir)
  if not builder.is_prepared():
    print(f"writing synthetic {size}px dataset to {data_dir} ...", flush=True)
    builder.download_and_prepare()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = builder.as_data_source(split="train")
  meta = builder.as_data_source(split="train", decoders={"image": tfds.decode.SkipDecoding(),
                                                         "mask": tfds.decode.SkipDecoding()})
  return input_pipeline.Pipeline([source], config, seed=0, metadata_sources=[meta])


def measure(dataset: str | int, cache: str, data_dir: str) -> dict[str, float]:
  t0 = time.perf_counter()
  pipeline = _pipeline(dataset, cache, data_dir)
  setup_s = time.perf_counter() - t0
  it = pipeline.train_iterator(_BATCH.value)
  for _ in range(5):  # Warm-up: threads started, prefetch buffer filled once.
    next(it)
  rates = []
  for _ in range(_PASSES.value):
    t0 = time.perf_counter()
    for _ in range(_BATCHES.value):
      batch = next(it)
    rates.append(_BATCHES.value * len(batch["image"]) / (time.perf_counter() - t0))
  if hasattr(it, "close"):
    it.close()
  return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
          "setup_s": setup_s, "num_train": pipeline.num_train, "size": pipeline.image_size}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  data_dir = _DATA_DIR.value or tempfile.mkdtemp(prefix="chairgen_bench_")
  load = os.getloadavg()
  print(f"cpus={os.cpu_count()} load(1,5,15 min)={load[0]:.2f},{load[1]:.2f},{load[2]:.2f} "
        f"batch={_BATCH.value} threads={_THREADS.value} workers={_WORKERS.value} "
        f"data={','.join(_NAMES.value) or 'synthetic'}")
  datasets = _NAMES.value or [int(s) for s in _SIZES.value]
  if _NAMES.value:  # Build (or open) each once, outside the timings.
    for name in _NAMES.value:
      _pipeline(name, "no", data_dir)
  print(f"{'size':>5} {'cache':>5} {'images/s (median)':>18} {'min':>8} {'max':>8} {'setup s':>8} "
        f"{'train':>7}  data")
  for dataset in datasets:
    for cache in _CACHE.value:
      r = measure(dataset, cache, data_dir)
      label = dataset if isinstance(dataset, str) else "synthetic"
      print(f"{r['size']:>5} {cache:>5} {r['median']:>18.0f} {r['min']:>8.0f} {r['max']:>8.0f} "
            f"{r['setup_s']:>8.1f} {r['num_train']:>7}  {label}", flush=True)
  load = os.getloadavg()
  print(f"load after (1,5,15 min)={load[0]:.2f},{load[1]:.2f},{load[2]:.2f}")


if __name__ == "__main__":
  app.run(main)
