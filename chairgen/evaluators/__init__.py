"""Evaluators, configured by name as in big_vision: `config.evals = {name: {type: ..., ...}}`.

Each evaluator type is a module `chairgen.evaluators.<type>` with a class `Evaluator`:

```python
class Evaluator:
  def __init__(self, **kwargs): ...                      # the config entry, minus type/every
  def run(self, trained: inference.Trained, rng) -> Result: ...
  def fingerprint(self) -> str: ...   # optional: what it reads besides the config (a file's
                                      # digest), so a stored result of other input is stale
  def check_run(self, run_config): ...  # optional: refuse a run it cannot evaluate, before
                                        # the experiment trains anything
```

It never trains: it reads a `chairgen.inference.Trained` (parameters, and `trained.data` for
the split and ground truth) and returns a `Result` of numbers, pictures and arrays (arrays are
kept so that a section can put several runs' outputs side by side without regenerating them).
The same `run` serves training (periodic, every `every` steps, scalars and images to
TensorBoard), `python -m experiments.evaluate` and the paper-section experiments; its output
goes to `<workdir>/eval/<name>/` (`metrics.json`, one PNG per picture, `arrays.npz`).

Every evaluator's PRNG key is `fold_in(key(run seed), crc32(name))`: a number and the picture
beside it come from the same call, and rerunning gives the same of both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import pkgutil
import tempfile
import types
import zlib
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from chairgen import distributed
from chairgen import imaging

EVAL_DIR = "eval"
_RESERVED = ("type", "every")


@dataclasses.dataclass
class Result:
  """What one evaluation produced."""
  metrics: dict[str, float]                                    # finite scalars
  images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)   # uint8 [H, W, 3]
  arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)   # for sections
  info: dict[str, Any] = dataclasses.field(default_factory=dict)  # JSON extras (e.g. ids)


@dataclasses.dataclass
class Configured:
  """An evaluator instance with its name, type, period and the config it was built from."""
  name: str
  type: str
  every: int | None
  config: dict[str, Any]
  evaluator: Any
  code: str = ""   # digest of the evaluator's source: a stored result of other code is stale

  def run(self, trained, rng=None) -> Result:
    rng = eval_key(trained.seed, self.name) if rng is None else rng
    result = self.evaluator.run(trained, rng)
    bad = {k: v for k, v in result.metrics.items() if not np.isfinite(v)}
    if bad:
      raise FloatingPointError(
          f"evaluator {self.name!r} ({self.type}) gave non-finite metrics {bad} for "
          f"{trained.workdir or 'the run'} at step {trained.step}: the network outputs NaN or "
          "inf; check the run's training metrics (metrics.jsonl) for a diverged loss.")
    return result


def known_types() -> list[str]:
  package = os.path.dirname(__file__)
  return sorted(m.name for m in pkgutil.iter_modules([package]) if not m.name.startswith("_"))


_CODE_VERSIONS: dict[str, str] = {}


def code_version(module) -> str:
  """Digest of an evaluator module's source, the shared helpers' and that of every chairgen
  module it imports (e.g. `style_space`, where its measures live), for stored results.

  Computed once per process, when the evaluator is first built: the digest describes the code
  this process runs even if the files change while it trains.
  """
  if module.__name__ not in _CODE_VERSIONS:
    _CODE_VERSIONS[module.__name__] = _digest(module)
  return _CODE_VERSIONS[module.__name__]


def _digest(module) -> str:
  h = hashlib.sha256()
  imported = sorted({m.__file__ for m in vars(module).values()
                     if isinstance(m, types.ModuleType) and m.__name__.startswith("chairgen.")
                     and getattr(m, "__file__", None)})
  paths = [module.__file__, os.path.join(os.path.dirname(__file__), "_common.py")] + imported
  for path in dict.fromkeys(paths):
    with open(path, "rb") as f:
      h.update(f.read())
  return h.hexdigest()[:12]


def eval_key(seed: int, name: str) -> jax.Array:
  return jax.random.fold_in(jax.random.key(int(seed)), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _to_dict(entry) -> dict[str, Any]:
  if isinstance(entry, ml_collections.ConfigDict):
    return entry.to_dict()
  return dict(entry)


def from_config(evals: Mapping[str, Any] | None, only: list[str] | None = None
                ) -> list[Configured]:
  """Builds the evaluators of `config.evals` (optionally only the named ones), in order."""
  evals = {} if evals is None else dict(evals)
  if only:
    unknown = [n for n in only if n not in evals]
    if unknown:
      raise ValueError(f"unknown evaluator name(s) {unknown}: this config defines "
                       f"{sorted(evals) or 'none'} (config.evals). Pass names from that list, "
                       "or add an entry {'type': ..., ...} to config.evals.")
    evals = {n: evals[n] for n in only}
  built = []
  for name, entry in evals.items():
    entry = _to_dict(entry)
    kind = entry.get("type")
    if kind not in known_types():
      raise ValueError(f"config.evals.{name}: unknown evaluator type {kind!r}; choose one of "
                       f"{known_types()} (modules of chairgen/evaluators/).")
    kwargs = {k: v for k, v in entry.items() if k not in _RESERVED}
    module = importlib.import_module(f"chairgen.evaluators.{kind}")
    try:
      evaluator = module.Evaluator(**kwargs)
    except TypeError as e:
      raise ValueError(f"config.evals.{name} ({kind}): {e}; see the docstring of "
                       f"chairgen.evaluators.{kind}.Evaluator for its fields.") from e
    every = entry.get("every")
    code = code_version(module)
    if hasattr(evaluator, "fingerprint"):   # inputs outside the config, e.g. a file's digest
      code = f"{code}:{evaluator.fingerprint()}"
    built.append(Configured(name=name, type=kind, every=None if every is None else int(every),
                            config=entry, evaluator=evaluator, code=code))
  return built


# ----------------------------------------------------------------------------- storage

def eval_dir(workdir: str, name: str) -> str:
  return os.path.join(workdir, EVAL_DIR, name)


def _atomic_write(path: str, write) -> None:
  if not distributed.is_primary():  # one writer in a multi-process run
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
  os.close(fd)
  try:
    write(tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_result(directory: str, evaluator: Configured, step: int, result: Result) -> str:
  """Writes PNGs and arrays first and metrics.json last, so a complete metrics.json means a
  complete evaluation. Returns the directory."""
  for image_name, image in result.images.items():
    imaging.save_png(os.path.join(directory, f"{image_name}.png"), image)
  if result.arrays:
    def write_npz(p):
      with open(p, "wb") as f:
        np.savez_compressed(f, **result.arrays)
    _atomic_write(os.path.join(directory, "arrays.npz"), write_npz)
  record = {"name": evaluator.name, "type": evaluator.type, "config": evaluator.config,
            "code": evaluator.code, "step": int(step), "metrics": {k: float(v) for k, v in result.metrics.items()},
            "images": sorted(result.images), "info": result.info}

  def write_json(p):
    with open(p, "w", encoding="utf-8") as f:
      json.dump(record, f, indent=2, sort_keys=True)
  _atomic_write(os.path.join(directory, "metrics.json"), write_json)
  return directory


def read_result(directory: str, evaluator: Configured | None = None, step: int | None = None
                ) -> Result | None:
  """The stored result in `directory` if it matches the evaluator's config, code and step."""
  path = os.path.join(directory, "metrics.json")
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
  except json.JSONDecodeError:
    return None  # a corrupt record is recomputed, never trusted
  if evaluator is not None and (record.get("config") != json.loads(json.dumps(evaluator.config))
                                or record.get("code") != evaluator.code):
    return None
  if step is not None and record.get("step") != step:
    return None
  arrays = {}
  npz = os.path.join(directory, "arrays.npz")
  if os.path.exists(npz):
    with np.load(npz) as data:
      arrays = {k: data[k] for k in data.files}
  images = {}
  for image_name in record.get("images", []):
    png = os.path.join(directory, f"{image_name}.png")
    if not os.path.exists(png):
      return None
    from PIL import Image  # pylint: disable=g-import-not-at-top
    with Image.open(png) as im:
      images[image_name] = np.asarray(im.convert("RGB"))
  return Result(metrics=record["metrics"], images=images, arrays=arrays,
                info=record.get("info", {}))


def evaluate(trained, evaluator: Configured, *, workdir: str | None = None,
             reuse: bool = True) -> tuple[Result, bool]:
  """Runs (or reuses the stored result of) one evaluator on a trained run and stores it.

  Returns (result, reused).
  """
  workdir = workdir or trained.workdir
  directory = eval_dir(workdir, evaluator.name)
  if reuse:
    stored = read_result(directory, evaluator, trained.step)
    if stored is not None:
      return stored, True
  result = evaluator.run(trained)
  write_result(directory, evaluator, trained.step, result)
  return result, False
