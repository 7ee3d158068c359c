r"""Section 5.6: Figure 17 (a)-(h), random chairs, with diversity, novelty and sharpness.

    python -m experiments.random_generation \
        --config=experiments/configs/random_generation.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/random_generation_tiny
"""

import os

from absl import app
import numpy as np

from chairgen import experiment
from chairgen import imaging
from chairgen import metric_writers
from chairgen import reports

_FLAGS = experiment.define_flags("experiments/configs/random_generation.py:tiny")
LABELS = {"a": "(a) softmax of N(0, σ²), σ = 2", "b": "(b) softmax of N(0, σ²), σ = 4",
          "c": "(c) mixture of M = 3 chairs", "d": "(d) mixture of M = 5 chairs",
          "e": "(e) VAE, z ~ N(0, I), KL ×10", "f": "(f) VAE, z ~ N(0, I), KL ×1",
          "g": "(g) FC2 noise, deterministic net, low σ", "h": "(h) FC2 noise, deterministic "
          "net, high σ", "one_hot": "reference: the net's training chairs (one-hot)",
          "truth": "reference: the training images"}


def methods(config):
  """{letter: (run, eval name, method name)} in Figure 17's order, plus the references."""
  det = config.groups["deterministic"]
  out = {m["name"]: (det, "deterministic", m["name"]) for m in config.evals.deterministic.methods}
  out["e"] = (config.groups["e"], "vae", "prior")
  out["f"] = (config.groups["f"], "vae", "prior")
  out["one_hot"] = (det, "deterministic", "one_hot")
  return {k: out[k] for k in sorted(out, key=lambda k: (k == "one_hot", k)) if k in out}


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  found = methods(config)
  det = results.evals[config.groups["deterministic"]]["deterministic"]
  threshold = det.metrics["copy_threshold"]
  table = reports.Table(
      key="figure17", title="Figure 17: random chairs, diversity, novelty, copies, sharpness",
      extra_columns=["novelty", "copies", "sharpness (×10⁻³)"],
      note=(f"'ours' is the diversity: mean pairwise RMS distance of "
            f"{config.evals.deterministic.num_samples} samples (images on white, [0, 1]), mean ± "
            "std over samples of each one's mean distance to the others. Novelty: mean RMS "
            "distance to the nearest training image at the same view. Copies: fraction of "
            "samples at most as far from a training image as the net's median reconstruction "
            f"distance ({threshold:.3g} for the deterministic net; "
            + ", ".join(f"{results.evals[config.groups[k]]['vae'].metrics['copy_threshold']:.3g} "
                        f"for ({k})" for k in ("e", "f")) + "). Sharpness: mean variance of the Laplacian of the grey "
            "image (docs/evaluation.md). The paper judged all of it by eye."))
  per_sample = {}
  for letter, (run, ev, name) in found.items():
    r = results.evals[run][ev]
    per_sample[letter] = (r.arrays[f"{name}_diversity"], r.arrays[f"{name}_novelty"])
    table.rows.append(reports.Row(LABELS[letter], None, reports.Stat.of(r.arrays[f"{name}_diversity"]), {
        "novelty": f"{r.metrics[f'novelty_{name}']:.3g}",
        "copies": f"{r.metrics[f'copies_{name}']:.2f}",
        "sharpness (×10⁻³)": f"{r.metrics[f'sharpness_{name}'] * 1e3:.3g}"}))
  table.rows.append(reports.Row(LABELS["truth"], None, reports.Stat.of([det.metrics["diversity_truth"]]),
                                {"novelty": "0", "copies": "—", "sharpness (×10⁻³)":
                                 f"{det.metrics['sharpness_truth'] * 1e3:.3g}"}))
  report.tables.append(table)
  if "fc2_rms" in det.metrics:
    scales = {m["name"]: m["scale"] for m in config.evals.deterministic.methods
              if m["kind"] == "fc2_noise"}
    report.notes.append(
        "FC2 noise standard deviations (g, h): " + ", ".join(
            f"({k}) {s:g} × {det.metrics['fc2_rms']:.3g} = {s * det.metrics['fc2_rms']:.3g}"
            for k, s in scales.items()) + ", the RMS of the net's own FC2 activations over the "
        "training chairs times a factor fixed before the run.")

  heldout = {}
  for label, run in (("deterministic", config.groups["deterministic"]),
                     ("(e) KL ×10", config.groups["e"]), ("(f) KL ×1", config.groups["f"])):
    values = [r["heldout_mse"] for r in metric_writers.read_metrics(results.runs[run].workdir)
              if "heldout_mse" in r]
    if values:
      heldout[label] = values[-1]
  if heldout:
    report.notes.append(
        "How well each net reconstructs its held-out views at its last step (heldout MSE, "
        "×10⁻³): " + ", ".join(f"{k} {v * 1e3:.3g}" for k, v in heldout.items()) + ". A VAE "
        "far above the deterministic net has not learnt the chairs yet, and its prior samples "
        "say little about the KL weight.")

  rows, order = [], [k for k in found if k != "one_hot"]
  for letter in order:
    run, ev, name = found[letter]
    arrays = results.evals[run][ev].arrays
    rows += [imaging.to_float(arrays[f"{name}_samples"]), imaging.to_float(arrays[f"{name}_neighbours"])]
  imaging.save_png(os.path.join(out_dir, "figure17.png"), imaging.image_grid(np.stack(rows)))
  view = det.arrays["view"]
  report.figures.append(reports.Figure(
      "figure17", "Figure 17: random chairs above their nearest training images", "figure17.png",
      f"Pairs of rows, top to bottom: {', '.join(LABELS[k] for k in order)}; in each pair the "
      f"samples, then the nearest training image (RMS distance) at the same view "
      f"({view[0]:g}°, {view[1]:g}°)."))

  def less(a, b, what):
    i = {"diversity": 0, "novelty": 1}[what]
    return reports.verdict_less(reports.Stat.of(per_sample[a][i]), reports.Stat.of(per_sample[b][i]))

  def fmt(k, what):
    return reports.Stat.of(per_sample[k][{"diversity": 0, "novelty": 1}[what]]).format()

  claims = [
      ("(a) σ = 2: the generated chairs are all similar (less diverse than the training chairs)",
       less("a", "one_hot", "diversity"),
       f"diversity (a) {fmt('a', 'diversity')} vs training chairs {fmt('one_hot', 'diversity')}"),
      ("(b) σ = 4: the samples essentially copy training chairs (less novel than mixtures (c))",
       less("b", "c", "novelty"), f"novelty (b) {fmt('b', 'novelty')} vs (c) {fmt('c', 'novelty')}"),
  ]
  for k in ("c", "d"):
    claims.append((f"({k}) mixtures are diverse and novel: more diverse than (a) and more novel "
                   "than (b)", reports.weakest([less("a", k, "diversity"), less("b", k, "novelty")]),
                   f"diversity ({k}) {fmt(k, 'diversity')} vs (a) {fmt('a', 'diversity')}; novelty "
                   f"({k}) {fmt(k, 'novelty')} vs (b) {fmt('b', 'novelty')}"))
  claims.append(("(e) vs (f): the VAE with KL ×10 generates much more diverse chairs than ×1",
                 less("f", "e", "diversity"),
                 f"diversity (e) {fmt('e', 'diversity')} vs (f) {fmt('f', 'diversity')}"))
  for k in ("g", "h"):
    claims.append((f"({k}) FC2 noise in the deterministic net: not very diverse (less than the "
                   "mixtures (c))", less(k, "c", "diversity"),
                   f"diversity ({k}) {fmt(k, 'diversity')} vs (c) {fmt('c', 'diversity')}"))
  for text, verdict, evidence in claims:
    report.claims.append(reports.Claim(text, verdict, evidence))
  return report


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
