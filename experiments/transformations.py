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
  excess = {k: reports.Stat.of(v - per_style["identity"]) for k, v in per_style.items()}
  order = ["identity", "translation", "rotation", "zoom_in", "zoom_out", "stretch",
           "saturation", "brightness", "hue"]
  chairs = len(per_style["identity"])
  # Object area (mean of T_θ(mask)) per cell: the per-pixel MSE of a row scales with it, so
  # zoom-out or a shift out of the frame lowers the error by itself.
  area = transformations_eval.row_errors(arrays["object_area"])
  response = transformations_eval.responses(arrays["change_generated"], arrays["change_truth"])
  report.tables.append(reports.Table(
      key="figure7_mse", title="Generated transformed chair vs T_θ(ground truth), per-pixel MSE",
      unit="×10⁻³", scale=1e3,
      extra_columns=["excess over identity (×10⁻³)", "object area (% of the image)",
                     "response to θ"],
      rows=[reports.Row(k.replace("_", "-"), None, stat[k],
                        {"excess over identity (×10⁻³)": excess[k].format(1e3),
                         "object area (% of the image)": f"{100 * area[k].mean():.1f}",
                         "response to θ": f"{response[k]:.2f}" if k in response else "—"})
            for k in order],
      note=(f"Mean and std over {chairs} chairs of the MSE (images on white) over the row's 6 "
            "non-identity columns (zoom: its 3 zoom-in and 3 zoom-out columns); amounts up to "
            "the run's training ranges. The excess column subtracts each chair's own "
            "untransformed error: the spread of the first column is mostly how hard each chair "
            "is, so the claims below compare rows chair by chair. The object's area is given "
            "because a per-pixel error scales with it: transformations that shrink the object "
            "or move part of it out of the frame score lower for that reason alone. Response "
            "to θ: how far the generated images move from the untransformed ones, as a fraction "
            "of how far T_θ moves the ground truth, pooled over the chairs (1: fully drawn, 0: θ "
            "ignored). Not in the "
            "paper.")))

  def mean_of(rows):
    return sum(per_style[k] for k in rows) / len(rows)

  verdict, diff = reports.verdict_less_paired(mean_of(_COLOUR), mean_of(_SPATIAL))
  report.claims.append(reports.Claim(
      "colour transformations are drawn better than spatial ones", verdict,
      f"spatial minus colour rows, per chair: {diff.format(1e3)} ×10⁻³ (colour rows "
      f"{reports.Stat.of(mean_of(_COLOUR)).format(1e3)}, spatial rows "
      f"{reports.Stat.of(mean_of(_SPATIAL)).format(1e3)})"))
  others = [k for k in augment.SHEET_ROWS if k != "translation"]
  hardest = max(others, key=lambda k: stat[k].mean)
  verdict, diff = reports.verdict_less_paired(per_style[hardest], per_style["translation"])
  report.claims.append(reports.Claim(
      "translation is the hardest transformation", verdict,
      f"translation minus the next hardest row ({hardest}), per chair: {diff.format(1e3)} "
      f"×10⁻³ (translation {stat['translation'].format(1e3)}, {hardest} "
      f"{stat[hardest].format(1e3)})"))
  verdict, diff = reports.verdict_less_paired(per_style["zoom_out"], per_style["zoom_in"])
  report.claims.append(reports.Claim(
      "zoom-out, never shown in training, is drawn no worse than zoom-in", verdict,
      f"zoom-in minus zoom-out, per chair: {diff.format(1e3)} ×10⁻³ (zoom-out "
      f"{stat['zoom_out'].format(1e3)}, zoom-in {stat['zoom_in'].format(1e3)}); but the "
      f"zoomed-out object covers {100 * area['zoom_out'].mean():.0f} % of the image against "
      f"{100 * area['zoom_in'].mean():.0f} %: per unit of object area the errors are "
      f"{reports.Stat.of(per_style['zoom_out'] / area['zoom_out']).format(1e3)} (out) and "
      f"{reports.Stat.of(per_style['zoom_in'] / area['zoom_in']).format(1e3)} (in) ×10⁻³"))
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
