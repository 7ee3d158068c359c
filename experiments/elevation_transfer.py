r"""Section 5.3: Figures 10 and 11, elevation transfer between chairs and tables, measured.

    python -m experiments.elevation_transfer \
        --config=experiments/configs/elevation_transfer.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/elevation_transfer_tiny
"""

import os

from absl import app
import numpy as np

from chairgen import experiment
from chairgen import imaging
from chairgen import plots
from chairgen import reports
from chairgen.evaluators import elevations as elevations_lib

_FLAGS = experiment.define_flags("experiments/configs/elevation_transfer.py:tiny")
# (class, the single-class net, its label) of Figures 10 and 11.
FIGURES = (("chair", "chairs", "figure10", "chairs only"),
           ("table", "tables", "figure11", "tables only"))


_TITLE = {"figure10": "Figure 10", "figure11": "Figure 11"}


def _claim_sets(config):
  """(class, single-class group, its label, elevations, claim) of the section's claims."""
  tables_top = max(config.table_elevations)
  chair_transfer = [e for e in config.table_elevations if e not in config.chair_elevations]
  above = [float(e) for e in config.evals.elevations.elevations if e > tables_top]
  return [
      ("chair", "chairs", "chairs only", chair_transfer,
       "elevation transfer: the chairs + tables net generates chairs at elevations seen only "
       "on tables better than the chairs-only net"),
      ("table", "tables", "tables only", above,
       "extrapolation: the chairs + tables net generates tables at elevations above every "
       "trained one better than the tables-only net"),
      ("chair", "chairs", "chairs only", above,
       "beyond the paper: the chairs + tables net also extrapolates chairs to elevations no "
       "class was trained on better than the chairs-only net"),
  ]


def mse_by_elevation(results, run: str, cls: str, elevations) -> list[float | None]:
  metrics = results.evals[run]["elevations"].metrics
  return [metrics.get(f"mse_{cls}_el{e:g}") for e in elevations]


def _trained(config, cls: str, e: float) -> bool:
  allowed = config.chair_elevations if cls == "chair" else config.table_elevations
  return any(np.isclose(e, allowed))


def sweep_rows(results, runs, cls: str, columns) -> tuple[np.ndarray, int]:
  """uint8 figure: per model, ground truth, then one row per run, at the `columns` elevations."""
  rows = []
  first = results.arrays(runs[0], "elevations")
  pick = [int(np.argmin(np.abs(first["elevations"] - e))) for e in columns]
  for m in range(len(first[f"{cls}_models"])):
    rows.append(imaging.to_float(first[f"{cls}_truth"][m][pick]))
    for run in runs:
      a = results.arrays(run, "elevations")
      if not np.array_equal(a[f"{cls}_models"], first[f"{cls}_models"]):
        raise AssertionError(f"{run} drew other {cls}s than {runs[0]}: the runs read different data")
      rows.append(elevations_lib.on_background(a[f"{cls}_rgb"][m][pick], a[f"{cls}_mask"][m][pick],
                                               a[f"{cls}_trained"][pick]))
  return imaging.image_grid(np.stack(rows)), len(first[f"{cls}_models"])


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  both = config.groups["chairs_tables"]
  elevations = list(config.evals.elevations.elevations)
  series = []
  for cls, single, fig, single_label in FIGURES:
    ours = mse_by_elevation(results, both, cls, elevations)
    alone = mse_by_elevation(results, config.groups[single], cls, elevations)
    table = reports.Table(
        key=f"{fig}_mse", title=f"{_TITLE[fig]}: MSE of the generated {cls}s per elevation",
        unit="×10⁻³", scale=1e3, extra_columns=[f"{single_label} (×10⁻³)", "trained on"],
        note=(f"'ours' is the chairs + tables net, the extra column the net trained on {cls}s "
              f"alone; every stored {cls} view at that elevation (all azimuths, all models), "
              "MSE as docs/evaluation.md. The paper shows these views as pictures only."))
    for e, a, b in zip(elevations, ours, alone):
      table.rows.append(reports.Row(
          f"{e:g}°", None, None if a is None else reports.Stat.of([a]),
          {f"{single_label} (×10⁻³)": "—" if b is None else f"{b * 1e3:.3g}",
           "trained on": "yes" if _trained(config, cls, e) else "no"}))
    report.tables.append(table)
    for label, values in ((f"{cls}s: chairs + tables net", ours),
                          (f"{cls}s: {single_label} net", alone)):
      known = [(e, v) for e, v in zip(elevations, values) if v is not None]
      if known:
        series.append({"x": [e for e, _ in known], "y": [v * 1e3 for _, v in known],
                       "label": label})
    columns = config.figure10_elevations if fig == "figure10" else config.figure11_elevations
    picture, num_models = sweep_rows(results, [config.groups[single], both], cls, columns)
    imaging.save_png(os.path.join(out_dir, f"{fig}.png"), picture)
    report.figures.append(reports.Figure(
        fig, f"{_TITLE[fig]}: {cls}s at elevations {columns[0]:g}–{columns[-1]:g}°",
        f"{fig}.png", f"Per {cls} ({num_models}, azimuth {config.evals.elevations.figure_azimuth:g}°):"
        f" ground truth (white where none is stored), the {single_label} net, the chairs + "
        "tables net. Elevations the net was not trained on for this class are on green."))

  for cls, single, single_label, which, text in _claim_sets(config):
    ours = dict(zip(elevations, mse_by_elevation(results, both, cls, elevations)))
    alone = dict(zip(elevations, mse_by_elevation(results, config.groups[single], cls,
                                                  elevations)))
    pairs = [(ours[e], alone[e]) for e in which if ours.get(e) is not None
             and alone.get(e) is not None]
    where = ", ".join(f"{e:g}" for e in which) + "°"
    if not pairs:
      report.notes.append(f"{text} ({where}): not measurable here, the data holds no {cls} "
                          "views at those elevations (real data); see the figures.")
      continue
    verdict, diff = reports.verdict_less_paired([a for a, _ in pairs], [b for _, b in pairs])
    report.claims.append(reports.Claim(f"{text} ({where})", verdict, (
        f"mean over {len(pairs)} elevations {np.mean([a for a, _ in pairs]) * 1e3:.3g} (chairs "
        f"+ tables) vs {np.mean([b for _, b in pairs]) * 1e3:.3g} ({single_label}) ×10⁻³; "
        f"{single_label} − both per elevation = {diff.format(1e3)} ×10⁻³, "
        f"{np.mean([b / a for a, b in pairs]):.2f}× on average")))

  # A net that reads two classes in the same steps may be worse everywhere, trained elevations
  # included; its error at unseen elevations relative to its own trained-elevation error
  # separates "transfers the elevation" from "is less trained".
  ratios = []
  for cls, single, _, single_label in FIGURES:
    for label, run in ((single_label, config.groups[single]), ("chairs + tables", both)):
      metrics = results.evals[run]["elevations"].metrics
      if f"mse_{cls}_seen" in metrics and f"mse_{cls}_unseen" in metrics:
        ratio = metrics[f"mse_{cls}_unseen"] / metrics[f"mse_{cls}_seen"]
        ratios.append(f"{cls}s, {label} net: {ratio:.2f}×")
  if ratios:
    report.notes.append(
        "Mean error at the unseen elevations divided by the same net's mean error at its trained "
        "ones (lower: degrades less away from what it saw): " + "; ".join(ratios) + ".")

  chairs_alone = mse_by_elevation(results, config.groups["chairs"], "chair", elevations)
  seen = [v for e, v in zip(elevations, chairs_alone) if v is not None and _trained(config, "chair", e)]
  unseen = [v for e, v in zip(elevations, chairs_alone)
            if v is not None and not _trained(config, "chair", e)]
  if seen and unseen:
    report.claims.append(reports.Claim(
        "the chairs-only net hardly generalises to unseen elevations: its error there is well "
        "above its error at the trained ones",
        reports.verdict_less(reports.Stat.of(seen), reports.Stat.of(unseen)),
        f"trained elevations {reports.Stat.of(seen).format(1e3)}, unseen "
        f"{reports.Stat.of(unseen).format(1e3)} ×10⁻³ (mean ± std over elevations)"))
  if series:
    plots.line_plot(os.path.join(out_dir, "mse_by_elevation.png"), series,
                    xlabel="elevation (degrees)", ylabel="MSE (×10⁻³)",
                    title=f"Section 5.3 at `{config.scale}`: error per elevation")
    report.figures.append(reports.Figure(
        "mse_by_elevation", "Beyond the paper: MSE per elevation for each net",
        "mse_by_elevation.png", f"Chairs are trained at {', '.join(f'{e:g}' for e in config.chair_elevations)}°, "
        f"tables at {config.table_elevations[0]:g}–{config.table_elevations[-1]:g}°."))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
