r"""Section 5.4: Figures 12-15, style morphs sorted by a measured quality.

    python -m experiments.style_interpolation \
        --config=experiments/configs/style_interpolation.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/style_interpolation_tiny
"""

import os

from absl import app
import numpy as np

from chairgen import experiment
from chairgen import imaging
from chairgen import reports

_FLAGS = experiment.define_flags("experiments/configs/style_interpolation.py:tiny")
# (eval name, group, label) of the two-way morph figures.
MORPHS = (("figure12", "chairs", "Figure 12: chairs"), ("figure13", "cars", "Figure 13: cars"),
          ("figure15", "chairs_tables", "Figure 15: chairs to tables"))
ENDS = {"chairs": "two training chairs", "cars": "two training cars",
        "chairs_tables": "a training chair and a training table"}


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  table = reports.Table(
      key="morph_quality", title="Measured morph quality (lower is better)",
      extra_columns=["jumpiness", "stray", "pixel cross-fade score", "beats cross-fade", "view"],
      note=("'ours' is the morph score jumpiness + stray, mean ± std over the morphs "
            "(docs/evaluation.md, section 5.4): jumpiness 0 = change spread evenly, 1 = one jump; "
            "stray = distance of the invented frames to the nearest training image relative to "
            "the distance D between the ends. The baseline is the pixel cross-fade of the same "
            "end frames: jumpiness 0, stray at most 0.25 when the ends are training images, plus "
            "about the ends' own distance to the training images over D when they are not (a "
            "blurry net). The paper sorted its rows by eye and gave no number."))
  scores = {}
  for eval_name, group, label in MORPHS:
    run = config.groups[group]
    result = results.evals[run][eval_name]
    a = result.arrays
    scores[eval_name] = a["score"]
    table.rows.append(reports.Row(label, None, reports.Stat.of(a["score"]), {
        "jumpiness": f"{np.mean(a['jumpiness']):.3g}", "stray": f"{np.mean(a['stray']):.3g}",
        "pixel cross-fade score": f"{np.mean(a['crossfade_score']):.3g}",
        "beats cross-fade": f"{int(np.sum(a['score'] < a['crossfade_score']))}/{len(a['score'])}",
        "view": f"{a['view'][0]:g}°, {a['view'][1]:g}°"}))
    imaging.save_png(os.path.join(out_dir, f"{eval_name}.png"), result.images["morphs"])
    order = "; ".join(f"{p[0]}→{p[1]} ({s:.2f})" for p, s in zip(a["pairs"], a["score"]))
    report.figures.append(reports.Figure(
        eval_name, f"{label} morphs, best measured quality on top", f"{eval_name}.png",
        f"`{run}`: style input moved linearly between {ENDS[group]}, "
        f"{config.evals[eval_name].num_frames} frames of which {config.evals[eval_name].show} "
        f"are shown; rows sorted by score (style a→b, score): {order}."))
  tri = results.evals[config.groups["chairs"]]["figure14"]
  table.rows.append(reports.Row(
      "Figure 14: three-way (stray only)", None, reports.Stat.of([tri.metrics["stray"]]),
      {"jumpiness": "—", "stray": f"{tri.metrics['stray']:.3g}", "pixel cross-fade score": "—",
       "beats cross-fade": "—", "view": f"{tri.arrays['view'][0]:g}°, {tri.arrays['view'][1]:g}°"}))
  report.tables.append(table)
  imaging.save_png(os.path.join(out_dir, "figure14.png"), tri.images["triangles"])
  upper, lower = tri.arrays["triples"].tolist()
  report.figures.append(reports.Figure(
      "figure14", "Figure 14: interpolation between triples of chairs", "figure14.png",
      f"A table of n rows and n + 1 columns. Upper-right triangle: styles {upper} at its corners "
      "(top row, second cell; top row, last cell; last column, bottom cell); lower-left: "
      f"{lower} (first column, bottom; first column, top; bottom row, second-to-last cell). "
      "Every other cell is a barycentric mixture of its triangle's corners, invented by the "
      "net."))

  for eval_name, group, label in MORPHS[:2]:
    a = results.evals[config.groups[group]][eval_name].arrays
    verdict, diff = reports.verdict_less_paired(a["score"], a["crossfade_score"])
    report.claims.append(reports.Claim(
        f"{label.split(': ')[1]}: the net's morphs are natural, measured as scoring better than "
        "the pixel cross-fade of their own end frames", verdict,
        f"cross-fade − net per morph = {diff.format()} over {len(a['score'])} morphs"))
  verdict = reports.verdict_less(reports.Stat.of(scores["figure12"]),
                                 reports.Stat.of(scores["figure15"]))
  report.claims.append(reports.Claim(
      "chair-to-table morphs are slightly worse than chair-to-chair morphs", verdict,
      f"score {reports.Stat.of(scores['figure12']).format()} (chairs) vs "
      f"{reports.Stat.of(scores['figure15']).format()} (chairs to tables); two different nets "
      "(the chairs + tables net reads twice the models in the same steps)"))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
