"""The experiment driver every paper-section entry point shares.

An experiment config (`experiments/configs/<section>.py`, `get_config(scale)`) has

    name, section, title, scale     what it reproduces
    runs   {run name: training config}          (the catalogue in experiments/configs/runs.py)
    evals  {eval name: {type, ..., runs=[...]}} evaluators, on every run or the listed ones

`run_experiment` trains the runs that are missing or unfinished (resuming), evaluates each run
with each of its evaluators (reusing stored results of the same step and config, so changing a
figure reruns in seconds), and hands the results to the section's `summarize(config, results)`,
which returns a `reports.Report`; the entry point writes it to `OUT/report.{json,md}`.

An entry point is then:

    _FLAGS = experiment.define_flags("experiments/configs/architectures.py:tiny")
    def summarize(config, results, out_dir) -> reports.Report: ...
    if __name__ == "__main__":
      app.run(experiment.main(_FLAGS, summarize))
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Callable

from absl import flags
import ml_collections
import numpy as np

from chairgen import cli  # the --distributed flags, defined before absl parses the command line
from chairgen import evaluators as evaluators_lib
from chairgen import imaging
from chairgen import inference
from chairgen import reports
from chairgen import runs as runs_lib

SCALES = ("test", "tiny", "paper")


@dataclasses.dataclass
class Results:
  """Every run's status and every evaluator's result, by run name and eval name."""
  config: ml_collections.ConfigDict
  runs: dict[str, runs_lib.RunStatus]
  evals: dict[str, dict[str, evaluators_lib.Result]]
  seeds: dict[str, int]

  def metric(self, run: str, eval_name: str, key: str) -> float:
    try:
      return float(self.evals[run][eval_name].metrics[key])
    except KeyError as e:
      raise KeyError(f"no metric {key!r} of evaluator {eval_name!r} for run {run!r}") from e

  def stat(self, run_names, eval_name: str, key: str) -> reports.Stat:
    """A metric over several runs (the seeds of one configuration)."""
    return reports.Stat.of([self.metric(r, eval_name, key) for r in run_names])

  def arrays(self, run: str, eval_name: str) -> dict[str, np.ndarray]:
    return self.evals[run][eval_name].arrays

  def run_records(self) -> dict[str, dict[str, Any]]:
    def shown(path):  # relative to the working directory when below it (reports get committed)
      rel = os.path.relpath(path)
      return path if rel.startswith("..") else rel
    return {name: {"step": st.step, "seed": self.seeds[name], "workdir": shown(st.workdir),
                   "train_seconds": round(st.train_seconds, 1)}
            for name, st in self.runs.items()}


def new_config(name: str, section: str, title: str, arg: str,
               variants: tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """The head of every experiment config; its `runs` and `evals` are filled in by the section.

  `arg` is the config argument: a scale, optionally followed by one of the section's
  `variants` after a comma (e.g. 'paper,real': the same protocol on the user's real data).
  A variant is appended to the experiment's name, so its runs and report stay apart.
  """
  scale, _, variant = (arg or "tiny").partition(",")
  scale = scale or "tiny"
  if scale not in SCALES:
    raise ValueError(f"unknown scale {scale!r}: choose one of {SCALES} "
                     "(e.g. --config=experiments/configs/architectures.py:tiny)")
  if variant and variant not in variants:
    raise ValueError(f"unknown variant {variant!r} of {name}: choose one of {variants or '(none)'}"
                     f" (e.g. --config=experiments/configs/{name}.py:tiny"
                     f"{',' + variants[0] if variants else ''})")
  config = ml_collections.ConfigDict()
  config.name = f"{name}_{variant}" if variant else name
  config.section, config.title, config.scale, config.variant = section, title, scale, variant
  config.runs = ml_collections.ConfigDict()
  config.evals = ml_collections.ConfigDict()
  return config


def longer_variant(config: ml_collections.ConfigDict, variant: str, factor: int,
                   what: str) -> int:
  """The steps factor of a 'train longer' variant of the CPU scales: `factor` when the
  config's variant is `variant` (and the title says so), else 1; refused at the paper scale,
  where every net trains its full 500k steps."""
  if config.variant != variant:
    return 1
  base = config.name.removesuffix(f"_{variant}")
  if config.scale == "paper":
    raise ValueError(f"{variant} is a variant of the CPU scales (test, tiny) only: at the "
                     f"paper scale every net trains its full 500k steps; use {base}.py:paper")
  config.title += f", {what} trained {factor}x longer"
  return factor


def check_config(config: ml_collections.ConfigDict) -> None:
  for field in ("name", "section", "title", "scale", "runs", "evals"):
    if field not in config:
      raise ValueError(f"experiment config has no field {field!r}: see chairgen/experiment.py")
  if config.scale not in SCALES:
    raise ValueError(f"scale {config.scale!r}: choose one of {SCALES}")
  names = set(config.runs.keys())
  for eval_name, entry in config.evals.items():
    listed = list(entry.get("runs", None) or [])
    unknown = [r for r in listed if r not in names]
    if unknown:
      raise ValueError(f"evals.{eval_name} names unknown run(s) {unknown}; the config's runs are "
                       f"{sorted(names)}")


def evaluators_for(config, run_name: str) -> list[evaluators_lib.Configured]:
  """The evaluators that apply to one run (entries without `runs` apply to all)."""
  entries = {}
  for name, entry in config.evals.items():
    entry = entry.to_dict() if isinstance(entry, ml_collections.ConfigDict) else dict(entry)
    listed = entry.pop("runs", None)
    if listed is None or run_name in listed:
      entries[name] = entry
  return evaluators_lib.from_config(entries)


def run_experiment(config, runs_dir: str, *, allow_training: bool = True,
                   data_dir: str | None = None, log: Callable[[str], None] = print) -> Results:
  """Trains what is missing, evaluates everything; see the module docstring."""
  check_config(config)
  run_names = list(config.runs.keys())
  for name in run_names:  # build every evaluator first: a bad entry fails before any training
    for ev in evaluators_for(config, name):
      if hasattr(ev.evaluator, "check_run"):   # e.g. needs a file that this data requires
        ev.evaluator.check_run(config.runs[name])
  statuses, seeds = {}, {}
  for i, name in enumerate(run_names):
    run_config = config.runs[name]
    if data_dir:
      run_config.data.data_dir = data_dir
    st = runs_lib.ensure_trained(
        runs_dir, config.scale, name, run_config, allow_training=allow_training, log=log,
        position=f"[{config.name} {i + 1}/{len(run_names)}]",
        next_up=run_names[i + 1] if i + 1 < len(run_names) else "evaluation")
    if not st.finished:
      raise SystemExit(f"run {name} stopped at step {st.step} of {st.num_steps} (SIGTERM?): "
                       "rerun the same command to resume it.")
    statuses[name], seeds[name] = st, int(run_config.seed)
  evals: dict[str, dict[str, evaluators_lib.Result]] = {}
  for i, name in enumerate(run_names):
    trained = inference.load(statuses[name].workdir)
    if data_dir:
      trained.config.data.data_dir = data_dir
    evals[name] = {}
    for ev in evaluators_for(config, name):
      began = time.perf_counter()
      result, reused = evaluators_lib.evaluate(trained, ev)
      evals[name][ev.name] = result
      log(f"[{config.name} eval {i + 1}/{len(run_names)}] {name} / {ev.name}: "
          f"{'stored result' if reused else f'{time.perf_counter() - began:.1f} s'}")
  return Results(config=config, runs=statuses, evals=evals, seeds=seeds)


# ----------------------------------------------------------------------------- entry points

@dataclasses.dataclass
class Flags:
  config: Any
  runs_dir: Any
  out_dir: Any
  train: Any
  data_dir: Any


def define_flags(default_config: str) -> Flags:
  """The flags of every section's entry point."""
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  return Flags(
      config=config_flags.DEFINE_config_file(
          "config", default_config, "Experiment config and scale (test | tiny | paper).",
          lock_config=False),
      runs_dir=flags.DEFINE_string(
          "runs_dir", "runs", "Where the shared training runs live (<runs_dir>/<scale>/<run>)."),
      out_dir=flags.DEFINE_string(
          "out_dir", None, "Where report.json, report.md and the figures go "
          "(default: <runs_dir>/reports/<experiment>_<scale>)."),
      train=flags.DEFINE_bool(
          "train", True, "Train missing or unfinished runs; --notrain only evaluates and "
          "fails naming any run that is not finished."),
      data_dir=flags.DEFINE_string(
          "data_dir", None, "TFDS data_dir for every run (default: each run's own)."))


def command_line() -> str:
  module = os.path.splitext(os.path.relpath(sys.argv[0]))[0].replace(os.sep, ".")
  if module.startswith(".") or "site-packages" in module:
    module = os.path.basename(sys.argv[0])
  return " ".join(["python -m " + module] + sys.argv[1:])


def main(f: Flags, summarize: Callable[..., reports.Report]) -> Callable[[list[str]], None]:
  """The absl main of a section: run, summarize, write the report, print where it is."""
  def _main(argv):
    cli.start(argv)
    config = f.config.value
    out_dir = f.out_dir.value or os.path.join(f.runs_dir.value, "reports",
                                              f"{config.name}_{config.scale}")
    began = time.perf_counter()
    results = run_experiment(config, f.runs_dir.value, allow_training=f.train.value,
                             data_dir=f.data_dir.value,
                             log=cli.echo)
    report = summarize(config, results, out_dir)
    report.wall_seconds = time.perf_counter() - began
    json_path, md_path = reports.write(out_dir, report)
    cli.echo(f"[{config.name}] wrote {md_path} and {json_path}")
  return _main


def new_report(config, results: Results, command: str | None = None) -> reports.Report:
  """A Report with the run records, machine, date and command filled in."""
  return reports.Report(
      name=config.name, section=config.section, title=config.title, scale=config.scale,
      command=command or command_line(), machine=reports.machine_info(), date=reports.now_utc(),
      wall_seconds=0.0, runs=results.run_records())


def comparison_grid(results: Results, eval_name: str, run_names, *, truth_from: str,
                    runs_as_columns: bool = False) -> np.ndarray:
  """uint8 picture of a `views` evaluator over runs: ground truth, then one line per run.

  Lines are rows (Figure 4) or, with runs_as_columns, columns (Figure 5).
  """
  lines = [results.arrays(truth_from, eval_name)["ground_truth"]]
  lines += [results.arrays(r, eval_name)["generated"] for r in run_names]
  grid = np.stack(lines)          # [lines, views, S, S, 3]
  if runs_as_columns:
    grid = grid.transpose(1, 0, 2, 3, 4)
  return imaging.image_grid(grid)
