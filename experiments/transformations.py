r"""Section 5.1, Figure 7: the transformation sheet, and how well each transformation is drawn.

    python -m experiments.transformations --config=experiments/configs/transformations.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/transformations_tiny
"""

import os

from absl import app

from chairgen import augment
from chairgen import experiment
from chairgen import imaging
from chairgen import reports
from chairgen.evaluators import transformations as transformations_eval

_FLAGS = experiment.define_flags("experiments/configs/transformations.py:tiny")
_COLOUR = ("saturation", "brightness", "hue")
_SPATIAL = ("translation", "rotation", "zoom", "stretch")


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  arrays = results.arrays(config.run, "figure7")
  per_style = transformations_eval.row_errors(arrays["mse"])  # name -> f64[styles]
  stat = {k: reports.Stat.of(v) for k, v in per_style.items()}
  order = ["identity", "translation", "rotation", "zoom_in", "zoom_out", "stretch",
           "saturation", "brightness", "hue"]
  report.tables.append(reports.Table(
      key="figure7_mse", title="Generated transformed chair vs T_θ(ground truth), per-pixel MSE",
      unit="×10⁻³", scale=1e3, rows=[reports.Row(k.replace("_", "-"), None, stat[k])
                                    for k in order],
      note=(f"Mean and std over {len(per_style['identity'])} chairs of the MSE (images on "
            "white) over the row's 6 non-identity columns (zoom: its 3 zoom-in and 3 zoom-out "
            "columns); amounts up to the run's training ranges. Not in the paper.")))
  colour = reports.Stat.of(sum(per_style[k] for k in _COLOUR) / len(_COLOUR))
  spatial = reports.Stat.of(sum(per_style[k] for k in _SPATIAL) / len(_SPATIAL))
  report.claims.append(reports.Claim(
      "colour transformations are drawn better than spatial ones",
      reports.verdict_less(colour, spatial),
      f"mean over colour rows {colour.format(1e3)} vs spatial rows {spatial.format(1e3)} ×10⁻³"))
  hardest = max((k for k in augment.SHEET_ROWS if k != "translation"),
                key=lambda k: stat[k].mean)
  report.claims.append(reports.Claim(
      "translation is the hardest transformation",
      reports.verdict_less(stat[hardest], stat["translation"]),
      f"translation {stat['translation'].format(1e3)} vs the next hardest, {hardest}, "
      f"{stat[hardest].format(1e3)} ×10⁻³"))
  report.claims.append(reports.Claim(
      "zoom-out, never shown in training, is drawn no worse than zoom-in",
      reports.verdict_less(stat["zoom_out"], stat["zoom_in"]),
      f"zoom-out {stat['zoom_out'].format(1e3)} vs zoom-in {stat['zoom_in'].format(1e3)} ×10⁻³"))
  for i in range(min(2, len(arrays["generated"]))):
    for kind, key in (("", "generated"), ("_truth", "truth")):
      imaging.save_png(os.path.join(out_dir, f"figure7_chair{i}{kind}.png"),
                       imaging.image_grid(arrays[key][i]))
    report.figures.append(reports.Figure(
        f"figure7_chair{i}", f"Figure 7, chair {i}: generated (rows: "
        + ", ".join(augment.SHEET_ROWS) + ")", f"figure7_chair{i}.png",
        f"T_θ applied to the ground truth, for comparison: figure7_chair{i}_truth.png. The "
        "middle column is untransformed; the zoom row's left half zooms out."))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
