r"""Renders procedural turntables in the Aubry (chairs) or 3D-R2N2 layout.

  python tools/make_turntables.py --family=chairs --num_models=100 --image_size=128 \
      --layout=aubry --out_dir=/tmp/turntables [--seed=0] [--num_workers=2]
  python tools/make_turntables.py --family=cars --num_models=100 --image_size=128 \
      --layout=r2n2 --out_dir=/tmp/turntables --extra_elevations

Resumable: each model folder appears only when complete (written under <out_dir>/.partial and
renamed into place), a rerun skips finished models and rebuilds interrupted ones. The Aubry
`all_chair_names.mat` is written last. Settings are recorded beside the model folders and a
rerun with different settings is refused, so one tree never mixes image sizes or seeds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time

from absl import app
from absl import flags
from absl import logging
import tqdm

from chairgen import procedural
from chairgen.procedural import turntables

_FAMILY = flags.DEFINE_enum("family", None, list(procedural.FAMILIES), "Object family.")
_NUM_MODELS = flags.DEFINE_integer("num_models", None, "Models 0..N-1 to render.", lower_bound=1)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 128, "Side of the square images in pixels.",
                                   lower_bound=8, upper_bound=4096)
_LAYOUT = flags.DEFINE_enum("layout", None, list(turntables.LAYOUTS),
                            "aubry: rendered_chairs/<id>/renders/*.png (chairs only); "
                            "r2n2: <synset>/<id>/rendering/NN.png RGBA.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output root folder.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the object generator.", lower_bound=0)
_EXTRA_ELEVATIONS = flags.DEFINE_bool(
    "extra_elevations", False, "r2n2 only: add elevations 50..90 (extrapolation ground truth).")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 2, "Worker processes, one renderer each; 0 renders in this process.",
    lower_bound=0)

flags.mark_flags_as_required(["family", "num_models", "layout", "out_dir"])
flags.register_multi_flags_validator(
    ["layout", "family"], lambda f: f["layout"] != "aubry" or f["family"] == "chairs",
    message="--layout=aubry holds chairs only; use --layout=r2n2 for tables and cars.")
flags.register_multi_flags_validator(
    ["layout", "extra_elevations"], lambda f: f["layout"] != "aubry" or not f["extra_elevations"],
    message="--extra_elevations needs --layout=r2n2 (the Aubry layout has exactly 62 views).")

SETTINGS_FILE = ".chairgen_turntables.json"

_renderer: procedural.Renderer | None = None  # One per worker process, reused for every model.


def _init_worker(image_size: int) -> None:
  global _renderer
  # llvmpipe's own threads only add overhead at these sizes; each worker owns one core.
  os.environ.setdefault("LP_NUM_THREADS", "0")
  _renderer = procedural.Renderer(image_size)


def _render_model(task: tuple) -> bool:
  family, index, seed, out_dir, layout, extra = task
  obj = procedural.make_object(family, index, seed)
  return turntables.write_model(_renderer, obj, out_dir, layout, extra)


def _check_settings(parent: str, settings: dict) -> None:
  """Records the settings of a tree, or refuses to extend a tree made with other settings."""
  path = os.path.join(parent, SETTINGS_FILE)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old != settings:
      diff = ", ".join(f"{k}={old.get(k)!r} (now {v!r})" for k, v in settings.items()
                       if old.get(k) != v)
      raise app.UsageError(
          f"{parent} already holds turntables made with {diff}; use another --out_dir or the "
          "same settings to resume.")
    return
  os.makedirs(parent, exist_ok=True)
  with open(path, "w") as f:
    json.dump(settings, f, indent=1, sort_keys=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  family, layout, out_dir = _FAMILY.value, _LAYOUT.value, _OUT_DIR.value
  num_models, seed, extra = _NUM_MODELS.value, _SEED.value, _EXTRA_ELEVATIONS.value
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise app.UsageError(f"--out_dir={out_dir} exists and is not a folder.")
  names = [procedural.object_name(family, i, seed) for i in range(num_models)]
  parent = os.path.dirname(turntables.model_dir(out_dir, layout, family, names[0]))
  _check_settings(parent, {"family": family, "layout": layout, "seed": seed,
                           "image_size": _IMAGE_SIZE.value, "extra_elevations": extra})
  # Leftovers of an interrupted run are never complete models: start them afresh.
  shutil.rmtree(os.path.join(out_dir, turntables.PARTIAL_DIR), ignore_errors=True)

  pending = [i for i, name in enumerate(names)
             if not os.path.isdir(turntables.model_dir(out_dir, layout, family, name))]
  views = len(turntables.views_for(layout, extra))
  logging.info("%d of %d models already complete in %s", num_models - len(pending),
               num_models, out_dir)
  tasks = [(family, i, seed, out_dir, layout, extra) for i in pending]
  start = time.perf_counter()
  with tqdm.tqdm(total=num_models * views, initial=(num_models - len(pending)) * views,
                 unit="img", desc=f"{family} ({layout})", smoothing=0.1) as bar:
    if _NUM_WORKERS.value == 0:
      _init_worker(_IMAGE_SIZE.value)
      for task in tasks:
        _render_model(task)
        bar.update(views)
    elif tasks:
      ctx = multiprocessing.get_context("spawn")  # Fresh processes: no inherited GL state.
      workers = min(_NUM_WORKERS.value, len(tasks))
      with ctx.Pool(workers, initializer=_init_worker, initargs=(_IMAGE_SIZE.value,)) as pool:
        for _ in pool.imap_unordered(_render_model, tasks, chunksize=1):
          bar.update(views)
  seconds = time.perf_counter() - start
  if layout == "aubry":
    turntables.write_aubry_names(out_dir, names)
  shutil.rmtree(os.path.join(out_dir, turntables.PARTIAL_DIR), ignore_errors=True)
  logging.info("Rendered %d models (%d images) in %.1f s (%.0f images/s) into %s",
               len(pending), len(pending) * views, seconds,
               len(pending) * views / max(seconds, 1e-9), out_dir)


if __name__ == "__main__":
  app.run(main)
