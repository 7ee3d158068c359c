r"""Section 4.3: Table 2 and Figures 5-6, training-set size and augmentation on cars.

    python -m experiments.dataset_size --config=experiments/configs/dataset_size.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/dataset_size_tiny
"""

import os

from absl import app
import numpy as np

from chairgen import experiment
from chairgen import imaging
from chairgen import plots
from chairgen import reports
from experiments.configs import dataset_size as paper


def _paper_column(config, label: str) -> tuple[str, float]:
  """The paper's column matched to ours by position (k-th size of the sweep), and its MSE."""
  if label.endswith("aug"):
    return "1000aug", paper.PAPER_MSE["aug"]
  size = paper.PAPER_SIZES[list(config.sizes).index(int(label))]
  return str(size), paper.PAPER_MSE[size]


_FLAGS = experiment.define_flags("experiments/configs/dataset_size.py:tiny")


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  n, aug = str(config.augmented_size), f"{config.augmented_size}aug"
  labels = [str(k) for k in config.sizes] + [aug]  # sweep order (ConfigDict sorts its keys)
  table = reports.Table(
      key="table2", title="Table 2: per-pixel MSE of the generated cars (training views)",
      unit="×10⁻³", scale=1e3, extra_columns=["held-out views (×10⁻³)"],
      note=("Columns of the paper are matched by position (k-th size of the sweep); the last is "
            f"the {config.augmented_size}-model net with augmentation. MSE as in "
            "docs/evaluation.md, on the training views."))
  stats = {}
  for label in labels:
    group = list(config.groups[label])
    stats[label] = results.stat(group, "train_views", "mse")
    paper_label, paper_mse = _paper_column(config, label)
    table.rows.append(reports.Row(
        (f"{label[:-3]} models + aug" if label.endswith("aug") else f"{label} models")
        + f" (paper: {paper_label})", paper_mse, stats[label],
        {"held-out views (×10⁻³)": results.stat(group, "heldout_views", "mse").format(1e3)}))
  report.tables.append(table)

  sweep = [stats[str(k)] for k in config.sizes]
  report.claims.append(reports.Claim(
      "without augmentation, the training error grows with the number of models",
      reports.verdict_increasing(sweep),
      "means " + " < ".join(s.format(1e3) for s in sweep) + " ×10⁻³ expected; Spearman ρ = "
      f"{reports.spearman(list(config.sizes), [s.mean for s in sweep]):.2f}"))
  report.claims.append(reports.Claim(
      f"augmentation raises the training error at the same size ({n} models)",
      reports.verdict_less(stats[n], stats[aug]),
      f"{stats[n].format(1e3)} without vs {stats[aug].format(1e3)} ×10⁻³ with"))

  morph = {}
  for key in ("step_cv", "max_step_ratio"):
    morph[key] = (results.stat(config.groups[aug], "figure6", key),
                  results.stat(config.groups[n], "figure6", key))
  report.claims.append(reports.Claim(
      "augmentation gives smoother morphs between cars (Figure 6): consecutive-frame "
      "differences of a 32-frame morph are spread more evenly",
      reports.verdict_less(*morph["step_cv"]),
      f"step CV {morph['step_cv'][0].format()} with vs {morph['step_cv'][1].format()} without; "
      f"max/mean step {morph['max_step_ratio'][0].format()} vs "
      f"{morph['max_step_ratio'][1].format()} (lower is smoother; "
      f"{len(config.evals.figure6.pairs)} pairs per run)"))
  report.tables.append(reports.Table(
      key="figure6_smoothness", title="Figure 6: morph smoothness (lower is smoother)",
      rows=[reports.Row(f"{label}: {key}", None, stat) for key, (with_aug, without) in
            morph.items() for label, stat in ((f"{n} models", without), (aug, with_aug))],
      note="step CV = std/mean of the 31 consecutive-frame MSEs of a 32-frame morph; max/mean "
           "step = 1 for perfectly even change; the paper shows the morphs but gives no number."))

  sizes = list(config.sizes)
  held = [results.stat(config.groups[str(k)], "heldout_views", "mse") for k in sizes]
  plots.line_plot(os.path.join(out_dir, "table2.png"), [
      {"x": sizes, "y": [s.mean * 1e3 for s in sweep],
       "yerr": [(s.std or 0) * 1e3 for s in sweep], "label": "training views"},
      {"x": sizes, "y": [s.mean * 1e3 for s in held],
       "yerr": [(s.std or 0) * 1e3 for s in held], "label": "held-out views"},
      {"x": [config.augmented_size], "y": [stats[aug].mean * 1e3],
       "yerr": [(stats[aug].std or 0) * 1e3], "label": "training views, augmented"}],
      xlabel="car models in the training set", ylabel="per-pixel MSE (×10⁻³)", logx=True,
      title=f"Table 2 at `{config.scale}` (mean ± std over seeds)")
  report.figures.append(reports.Figure(
      "table2_plot", "Table 2 as a plot: MSE against the training-set size", "table2.png"))
  step_series = []
  for label in (n, aug):
    diffs = np.concatenate([results.arrays(r, "figure6")["step_differences"]
                            for r in config.groups[label]])  # [runs x pairs, F - 1]
    step_series.append({"x": list(range(1, diffs.shape[1] + 1)), "y": diffs.mean(0) * 1e3,
                        "yerr": diffs.std(0) * 1e3,
                        "label": f"{label[:-3]} models + aug" if label == aug else
                        f"{label} models"})
  plots.line_plot(os.path.join(out_dir, "figure6_steps.png"), step_series,
                  xlabel="morph step (frame i to i + 1)",
                  ylabel="MSE between frames (×10⁻³)",
                  title="Figure 6: change per morph step (mean ± std, pairs × seeds)")
  report.figures.append(reports.Figure(
      "figure6_steps", "Figure 6's number: how much each morph step changes the image",
      "figure6_steps.png", "A flat curve is an even morph; a peak is a snap from one car to "
      "the other."))

  seed0 = [config.groups[label][0] for label in labels]
  imaging.save_png(os.path.join(out_dir, "figure5.png"), experiment.comparison_grid(
      results, "figure5", seed0, truth_from=seed0[0], runs_as_columns=True))
  report.figures.append(reports.Figure(
      "figure5", "Figure 5: ground truth, then one column per training set", "figure5.png",
      "Columns left to right: ground truth, " + ", ".join(labels) + " (seed 0). The cars are "
      "fixed indices chosen before training."))
  frames = [results.arrays(config.groups[k][0], "figure6")["frames"][0] for k in (n, aug)]
  shown = np.linspace(0, frames[0].shape[0] - 1, 16).round().astype(int)
  imaging.save_png(os.path.join(out_dir, "figure6.png"),
                   imaging.image_grid(np.stack([f[shown] for f in frames])))
  report.figures.append(reports.Figure(
      "figure6", "Figure 6: morph between two cars, without (top) and with (bottom) "
      "augmentation", "figure6.png", "16 of the 32 frames of the first pair, seed 0."))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
