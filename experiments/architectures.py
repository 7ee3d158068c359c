r"""Section 4.2: Table 1 and Figure 4, the five architectures on the same chairs.

    python -m experiments.architectures --config=experiments/configs/architectures.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/architectures_tiny
"""

import os

from absl import app

from chairgen import experiment
from chairgen import imaging
from chairgen import inference
from chairgen import models
from chairgen import reports
from experiments.configs import architectures as paper

_FLAGS = experiment.define_flags("experiments/configs/architectures.py:tiny")


def _parameters(run_config, workdir: str) -> tuple[int, int]:
  """Expanding-part parameters of this run and of the same architecture at 128 px, full width."""
  info = inference.read_run_info(workdir)
  full = run_config.copy_and_resolve_references()
  full.model.width_multiplier = 1.0
  return tuple(models.count_parameters(inference.build_model(c, info["num_styles"], size),
                                       expanding_only=True)
               for c, size in ((run_config, info["image_size"]), (full, 128)))


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  table = reports.Table(
      key="table1", title="Table 1: per-pixel MSE of the generated chairs (training views)",
      unit="×10⁻³", scale=1e3,
      extra_columns=["held-out views (×10⁻³)", "expanding part: this run", "at 128 px, full width",
                     "paper"],
      note=("MSE as docs/evaluation.md defines it: images on white in [0, 1], mean over pixels "
            "and channels, over every training view (Table 1's protocol); the held-out column "
            "is the 2 views per chair that training never saw. Parameters of the expanding "
            "part (FC5 and the up-convolutions), counted from the model."))
  stats = {}
  for arch in config.architectures:
    group = list(config.groups[arch])
    stats[arch] = results.stat(group, "train_views", "mse")
    held = results.stat(group, "heldout_views", "mse")
    ours, full = _parameters(config.runs[group[0]], results.runs[group[0]].workdir)
    table.rows.append(reports.Row(arch, paper.PAPER_MSE[arch], stats[arch], {
        "held-out views (×10⁻³)": held.format(1e3),
        "expanding part: this run": f"{ours / 1e6:.2f}M", "at 128 px, full width":
        f"{full / 1e6:.1f}M", "paper": f"{paper.PAPER_PARAMS_M[arch]}M"}))
  report.tables.append(table)

  deep, others = stats["1s-S-deep"], [a for a in config.architectures if a != "1s-S-deep"]
  verdicts = {a: reports.verdict_less(deep, stats[a]) for a in others}
  report.claims.append(reports.Claim(
      "1s-S-deep reconstructs the training chairs better than the other four architectures",
      reports.weakest(list(verdicts.values())),
      "; ".join(f"vs {a}: {stats['1s-S-deep'].format(1e3)} vs {stats[a].format(1e3)} ×10⁻³, {v}"
                for a, v in verdicts.items())))

  archs = list(config.architectures)
  rho = reports.spearman([paper.PAPER_MSE[a] for a in archs], [stats[a].mean for a in archs])
  ranked = sorted(archs, key=lambda a: stats[a].mean)
  report.notes.append(
      f"Ordering by training-view MSE, best first: {', '.join(ranked)} (paper: "
      f"{', '.join(sorted(archs, key=paper.PAPER_MSE.get))}); Spearman rank correlation with "
      f"the paper's ordering ρ = {rho:.2f} over the {len(archs)} architectures.")

  seed0 = [config.groups[a][0] for a in config.architectures]
  path = imaging.save_png(os.path.join(out_dir, "figure4.png"), experiment.comparison_grid(
      results, "figure4", seed0, truth_from=seed0[0]))
  report.figures.append(reports.Figure(
      "figure4", "Figure 4: ground truth, then " + ", ".join(config.architectures),
      os.path.basename(path), "Rows top to bottom: ground truth, then one row per "
      "architecture (seed 0), the same views of the same chairs."))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
