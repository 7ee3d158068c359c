"""Named training runs shared between experiments: train once, reuse everywhere.

A run is (name, training config) and lives in `<runs_dir>/<scale>/<name>/`, an ordinary
training workdir. Its identity is its training config minus the fields that do not change the
trained parameters (`NOT_IDENTITY`: kernel implementations, logging and evaluation periods,
data-loading knobs, the evaluators); a section that asks for an existing run with a different
identity gets an error naming the differing fields instead of silently reusing it.

`ensure_trained` skips a finished run, resumes an unfinished one and trains a missing one; it
keeps the cumulative training wall time in `timing.json` for the reports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import ml_collections

from chairgen import inference
from chairgen import reports

TIMING = "timing.json"
# Fields that do not change what a run learns (dotted paths into the training config).
NOT_IDENTITY = (
    "evals", "model.kernels", "model.upconv_impl", "model.conv_impl",
    "train.progress_bar", "train.log_every", "train.eval_every", "train.checkpoint_every",
    "train.max_checkpoints_to_keep",
    "data.data_dir", "data.build_if_missing", "data.cache", "data.cache_max_bytes",
    "data.num_threads", "data.num_workers", "data.prefetch",
)


def _as_dict(config) -> dict[str, Any]:
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort())
  return json.loads(json.dumps(config))


def identity(config) -> dict[str, Any]:
  """The training config as a plain dict without the `NOT_IDENTITY` fields."""
  d = _as_dict(config)
  for path in NOT_IDENTITY:
    *parents, leaf = path.split(".")
    node = d
    for p in parents:
      node = node.get(p, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
      node.pop(leaf, None)
  return d


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _library_defaults() -> dict[str, Any]:
  """The library's default of every data/model/loss/augment field, flattened.

  A run stored before a field existed behaved as that field's default (new fields are added
  with the default that keeps the old behaviour), so a field missing from one side compares
  as its default: adding a field does not orphan every stored run.
  """
  from chairgen import augment, input_pipeline, losses, models  # pylint: disable=g-import-not-at-top
  sections = {"data": input_pipeline.default_config(), "model": models.default_config(),
              "loss": losses.default_config(), "augment": augment.default_config()}
  return _flatten({k: _as_dict(v) for k, v in sections.items()})


def differences(a, b) -> list[str]:
  """'field: a != b' for each field where two identities differ."""
  fa, fb = _flatten(identity(a)), _flatten(identity(b))
  defaults = _library_defaults()
  def value(f, k):
    return f.get(k, defaults.get(k, "<missing>"))
  return [f"{k}: {value(fa, k)!r} != {value(fb, k)!r}"
          for k in sorted(set(fa) | set(fb)) if value(fa, k) != value(fb, k)]


@dataclasses.dataclass
class RunStatus:
  name: str
  workdir: str
  num_steps: int
  step: int | None            # latest complete checkpoint, None if none
  train_seconds: float = 0.0  # cumulative wall time of training in this workdir

  @property
  def finished(self) -> bool:
    return self.step is not None and self.step >= self.num_steps


def workdir_of(runs_dir: str, scale: str, name: str) -> str:
  return os.path.join(os.path.abspath(runs_dir), scale, name)


def _read_timing(workdir: str) -> dict[str, float]:
  try:
    with open(os.path.join(workdir, TIMING), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return {"seconds": 0.0, "steps": 0}


def status(runs_dir: str, scale: str, name: str, config) -> RunStatus:
  """Where run `name` stands; raises if its directory holds a run of another identity."""
  workdir = workdir_of(runs_dir, scale, name)
  num_steps = int(config.optimizer.num_steps)
  if not os.path.exists(os.path.join(workdir, inference.RUN_INFO)):
    return RunStatus(name, workdir, num_steps, None)
  stored = inference.read_run_info(workdir)["config"]
  diff = differences(stored, config)
  if diff:
    raise ValueError(
        f"run {name!r} in {workdir} was trained with another config ({'; '.join(diff[:6])}"
        f"{' ...' if len(diff) > 6 else ''}). Give the new run another name, use another "
        "--runs_dir, or delete that directory to retrain it.")
  steps = inference.available_steps(workdir)
  return RunStatus(name, workdir, num_steps, steps[-1] if steps else None,
                   float(_read_timing(workdir)["seconds"]))


def ensure_trained(runs_dir: str, scale: str, name: str, config, *, allow_training: bool = True,
                   log: Callable[[str], None] = print, position: str = "",
                   next_up: str = "") -> RunStatus:
  """Trains run `name` unless finished (resuming from its latest checkpoint)."""
  from chairgen import train  # pylint: disable=g-import-not-at-top  (evaluating needs no train)
  st = status(runs_dir, scale, name, config)
  where = f"{position} " if position else ""
  after = f"; next: {next_up}" if next_up else ""
  if st.finished:
    log(f"{where}{scale}/{name}: finished (step {st.step}), reusing{after}")
    return st
  if not allow_training:
    raise RuntimeError(
        f"run {scale}/{name} is {'missing' if st.step is None else f'at step {st.step}'} of "
        f"{st.num_steps} in {st.workdir} and training is off (--notrain): rerun with --train.")
  start = st.step or 0
  log(f"{where}{scale}/{name}: training steps {start}..{st.num_steps} "
      f"({'resuming' if start else 'new run'}){after}")
  began = time.perf_counter()
  train.train_and_evaluate(config, st.workdir)
  seconds = time.perf_counter() - began
  timing = _read_timing(st.workdir)
  timing = {"seconds": float(timing["seconds"]) + seconds,
            "steps": int(timing["steps"]) + st.num_steps - start}
  reports.write_text(os.path.join(st.workdir, TIMING), json.dumps(timing))
  st = status(runs_dir, scale, name, config)
  log(f"{where}{scale}/{name}: trained to step {st.step} in {seconds / 60:.1f} min")
  return st
