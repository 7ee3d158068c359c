r"""Section 5.5: Figure 16, feature arithmetic, against counterfactual ground truth.

    python -m experiments.feature_arithmetic \
        --config=experiments/configs/feature_arithmetic.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/feature_arithmetic_tiny
"""

import itertools
import os

from absl import app
import numpy as np

from chairgen import experiment
from chairgen import imaging
from chairgen import reports

_FLAGS = experiment.define_flags("experiments/configs/feature_arithmetic.py:tiny")
LAYER_LABELS = {"input": "input (style vector)", "style_fc1": "FC1", "style_fc2": "FC2"}


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  ev = config.evals.figure16
  (run,) = list(config.runs.keys())
  result = results.evals[run]["figure16"]
  m, a = result.metrics, result.arrays
  layers, differences = list(ev.layers), list(ev.differences)
  table = reports.Table(
      key="figure16_mse", title="Figure 16: MSE of the arithmetic's result to the chair it "
      "should produce", unit="×10⁻³", scale=1e3,
      extra_columns=["doing nothing (×10⁻³)", "result / nothing", "true change (×10⁻³)",
                     "chairs"],
      note=("The counterfactual truth is the base chair rendered with only the attribute's "
            "factor changed; 'doing nothing' is the net's own image of the base chair; 'true "
            "change' the MSE between the base chair's and the counterfactual's true images. "
            "Mean ± std over the base chairs and "
            f"{len(ev.views)} views each. 'pair': Δ from the most similar pair of other "
            "training chairs (the paper's), 'mean': from the means over all training chairs "
            "with and without the attribute."))
  for attr in ev.attributes:
    name = attr["name"]
    if f"{name}_mse" not in a:
      report.notes.append(f"{name}: skipped, {result.info['skipped']}")
      continue
    chairs = result.info["chairs"][name]
    for (i, layer), (j, d) in itertools.product(enumerate(layers), enumerate(differences)):
      table.rows.append(reports.Row(
          f"{name}: {attr['factor']} {attr['from']} → {attr['to']}, at {LAYER_LABELS[layer]}, "
          f"{d}", None, reports.Stat.of(a[f"{name}_mse"][:, i, j]), {
              "doing nothing (×10⁻³)": f"{m[f'mse_{name}_unchanged'] * 1e3:.3g}",
              "result / nothing": f"{m[f'ratio_{name}_{layer}_{d}']:.3g}",
              "true change (×10⁻³)": f"{m[f'mse_{name}_truth'] * 1e3:.3g}",
              "chairs": f"bases {chairs['bases']}, pair {chairs['pair']}"}))
    fc2 = layers.index("style_fc2") if "style_fc2" in layers else len(layers) - 1
    for j, d in enumerate(differences):
      verdict, diff = reports.verdict_less_paired(a[f"{name}_mse"][:, fc2, j],
                                                  a[f"{name}_unchanged"])
      report.claims.append(reports.Claim(
          f"{name} ({attr['factor']} {attr['from']} → {attr['to']}), {d} difference at "
          f"{LAYER_LABELS[layers[fc2]]}: the arithmetic produces the changed chair (closer to "
          "the counterfactual truth than the unchanged chair)", verdict,
          f"doing nothing − result per base chair = {diff.format(1e3)} ×10⁻³"))
    for j, d in enumerate(differences):   # "the exact layer does not matter"
      apart = []
      for (i1, l1), (i2, l2) in itertools.combinations(enumerate(layers), 2):
        delta = reports.Stat.of(a[f"{name}_mse"][:, i1, j] - a[f"{name}_mse"][:, i2, j])
        if delta.std is not None and abs(delta.mean) > delta.std:
          apart.append(f"{LAYER_LABELS[l1]} − {LAYER_LABELS[l2]} = {delta.format(1e3)}")
      single = len(a[f"{name}_unchanged"]) < 2
      report.claims.append(reports.Claim(
          f"{name}, {d} difference: the layer where the arithmetic is done does not matter",
          reports.WITHIN_NOISE if single else (reports.DOES_NOT_HOLD if apart else reports.HOLDS),
          ("one base chair: no spread to judge by" if single else
           ("layers differ beyond the per-chair spread: " + "; ".join(apart) + " ×10⁻³")
           if apart else "no two layers differ by more than the per-chair spread")))
  report.tables.append(table)
  imaging.save_png(os.path.join(out_dir, "figure16.png"), result.images["figure16"])
  report.figures.append(reports.Figure(
      "figure16", "Figure 16: feature arithmetic", "figure16.png",
      "Two rows per attribute (" + ", ".join(x["name"] for x in ev.attributes
                                          if f"{x['name']}_figure" in a) +
      f"), at {result.info['views'][0][0]:g}°, {result.info['views'][0][1]:g}°: the base chair, "
      "the pair x (with the attribute's from value) and y (its to value; white in the 'mean' row), the result at " +
      ", ".join(LAYER_LABELS[l] for l in layers) + ", and the counterfactual truth rendered "
      "by chairgen.procedural. First row: pair difference; second: mean difference."))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
