r"""Section 6: Figures 19-25, the trained "2s-E" network opened and measured.

    python -m experiments.network_analysis \
        --config=experiments/configs/network_analysis.py:tiny \
        --runs_dir=runs --out_dir=docs/reproduction/network_analysis_tiny
"""

import os

from absl import app
import numpy as np

from chairgen import experiment
from chairgen import imaging
from chairgen import reports

_FLAGS = experiment.define_flags("experiments/configs/network_analysis.py:tiny")
# Thresholds of the claims, fixed before any run (docs/evaluation.md, section 6).
EXPLAINED_HOLDS, EXPLAINED_PARTLY = 0.5, 0.25
FIGURES = (
    ("single_units", "figure19_rgb", "Figure 19 (top): output filters of the RGB stream",
     "One tile per input channel of the output layer (its kh x kw x 3 weights), one scale for "
     "the layer: 0.5 + w / (2 max|w|), mid grey = 0. Paper: \"As to be expected, they include "
     "edges and blobs\"; some look near-empty (Figure 25)."),
    ("single_units", "figure19_mask", "Figure 19 (bottom): output filters of the segmentation "
     "stream", "As above, grey: the mask logit's weights."),
    ("single_units", "figure20", "Figure 20: images from single units of FC1 and FC2 of the "
     "class stream, FC3, FC4", "Rows top to bottom: style FC1, style FC2, FC3, FC4. Leftmost: "
     "the layer all zero; the others: one unit (drawn at random among those that fire on the "
     "training images) set to its maximum over the training images, all others zero; view and "
     "θ inputs fixed (FC1, FC2 rows). Paper: FC1/FC2 images \"clearly look chair-like but do "
     "not show much variation\"; FC3/FC4 \"still resemble chairs but get much less "
     "realistic\"; one FC4 neuron \"seems to generate a zoomed chair\"."),
    ("single_units", "figure21", "Figure 21: single units of upconv2, upconv1 and FC5 of the "
     "RGB stream", "One channel at the map's centre set to its maximum, all else zero; shown as "
     "the RGB output's change from the all-zero image (mid grey = no change, one scale per "
     "row). Every cell is the whole output, so relative scales are correct. Paper: later layers "
     "give edge-like images, higher ones \"only blurry 'clouds'\"."),
    ("transformation_units", "figure22", "Figure 22: the measured FC4 unit of each "
     "transformation, raised from a real chair's activations", "Rows: the directions of the "
     "table below, in its order; columns: the unit raised by 0, 1, 2, 4, 8 times the increase "
     "the transformation itself causes in it. Paper: \"for each transformation there is a "
     "specialized neuron in FC4\"; increasing it \"results in a transformation of the "
     "generated image\"."),
    ("transformation_units", "figure23", "Figure 23: weights from those units into the RGB "
     "stream's FC5", "One row per unit (same order), its 8 x 8 outgoing weights to the FC5 "
     "channels with the largest weight norm; mid grey = 0, one scale per row. Paper: \"Some "
     "output channels are responsible for spatial transformations of the image, while others "
     "deal with the color and brightness\"."),
    ("hidden_maps", "figure24", "Figure 24: chairs from FC5 kept in a central window",
     "Columns: every stream's FC5 kept in the central 2 x 2, 4 x 4, 6 x 6, 8 x 8 window (the "
     "last is the unmasked net); rows: training chairs. Paper: \"in the central region, where "
     "many neurons are active, the image is sharp, while in the periphery it is blurry\"."),
    ("hidden_maps", "figure25", "Figure 25: pre-output maps behind near-empty output filters",
     "Top: the maps of the RGB stream's last hidden layer whose output filters have the least "
     "spatial structure; middle: close-ups of their centre; bottom: the chair generated with "
     "those maps zeroed, unchanged, and with as many other (random) maps zeroed. Paper: such "
     "maps \"exhibit regular patterns\" and \"compensate high-frequency artifacts\"; zeroed, "
     "the chair shows \"high-frequency artifacts\"."),
)


def summarize(config, results: experiment.Results, out_dir: str) -> reports.Report:
  report = experiment.new_report(config, results)
  evals = results.evals[config.net]
  for eval_name, key, title, caption in FIGURES:
    imaging.save_png(os.path.join(out_dir, f"{key}.png"), evals[eval_name].images[key])
    report.figures.append(reports.Figure(key, title, f"{key}.png", caption))

  units = evals["single_units"]
  table = reports.Table(
      key="single_units", title="Single units (Figures 20, 21)", extra_columns=["firing units"],
      note="'ours': RMS change of the image from the layer's all-zero image, mean over the "
           "row's single units (composite on white, in [0, 1]).")
  for layer in units.info["layers"]:
    change = units.arrays[f"change_{layer}"]
    table.rows.append(reports.Row(layer, None, reports.Stat.of(change if len(change) else [0.0]),
                                  {"firing units": f"{units.metrics[f'alive_{layer}']:.0%}"}))
  report.tables.append(table)

  tu = evals["transformation_units"]
  a, info = tu.arrays, tu.info
  threshold = config.evals.transformation_units.get("threshold", 1.5)
  table = reports.Table(
      key="figure22_units", title="FC4 transformation units found by measurement (Figure 22)",
      extra_columns=["unit", "runner-up", "specificity", "other kind most", "selectivity",
                     "specialised", "edit explained by T_θ", "T_θ strength at gain 8"],
      note=(f"'ours': the unit's activation increase from θ = identity to the transformation at "
            "the largest amount of its augmentation range, in RMS units of FC4, over "
            f"{config.evals.transformation_units.max_examples} training images. Specificity = "
            "its increase / the runner-up unit's; selectivity = its increase / its largest "
            "increase for a transformation of another kind; specialised = both >= "
            f"{threshold}. 'Edit explained': 1 − MSE(edited, T_s(unedited)) / "
            "MSE(edited, T_0(unedited)) at the best strength s in [0, 2] × the amount, mean "
            "over chairs and gains 1-8 (0: the edit is nothing like the transformation, 1: "
            "exactly it)."))
  for i, found in enumerate(info["found"]):
    d = found["direction"]
    table.rows.append(reports.Row(d.replace("_", " "), None, reports.Stat.of([a["response"][i]]), {
        "unit": str(found["unit"]), "runner-up": str(found["runner_up"]),
        "specificity": f"{a['specificity'][i]:.2f}",
        "other kind most": found["other_direction"].replace("_", " "),
        "selectivity": f"{a['selectivity'][i]:.2f}",
        "specialised": "yes" if d in info["specialised"] else "no",
        "edit explained by T_θ": f"{tu.metrics[f'explained_{d}']:.2f}",
        "T_θ strength at gain 8": f"{a['strength'][i, -1]:.2f}"}))
  report.tables.append(table)

  hm = evals["hidden_maps"]
  windows = [int(k) for k in hm.arrays["windows"]]
  table = reports.Table(
      key="figure24_windows", title="FC5 kept in a central window (Figure 24)",
      extra_columns=["RMS change from the unmasked image"],
      note="'ours': sharpness (variance of the Laplacian of the grey image, ×10³) over the "
           "chairs; the last window is the unmasked net.", unit="×10⁻³", scale=1e3)
  for k in windows:
    table.rows.append(reports.Row(f"{k} × {k}", None, reports.Stat.of(hm.arrays[f"sharpness_{k}"]),
                                  {"RMS change from the unmasked image":
                                   f"{hm.metrics[f'change_{k}']:.3f}"}))
  report.tables.append(table)
  table = reports.Table(
      key="figure25_hf", title="High-frequency energy with the near-empty filters' maps zeroed "
      "(Figure 25)", unit="%", scale=100.0,
      note=(f"Share of the grey image's spectral power above 0.25 cycles per pixel (DC "
            f"excluded), mean ± std over the chairs. Maps zeroed: {info_maps(hm)}."))
  for label, key in (("unchanged", "unchanged"), ("near-empty filters' maps zeroed", "zeroed"),
                     ("as many random other maps zeroed (control)", "control")):
    table.rows.append(reports.Row(label, None, reports.Stat.of(hm.arrays[f"hf_{key}"])))
  report.tables.append(table)

  n_dir = int(tu.metrics["num_directions"])
  n_spec = int(tu.metrics["num_specialised"])
  verdict = (reports.HOLDS if n_spec == n_dir else
             reports.WITHIN_NOISE if 2 * n_spec >= n_dir else reports.DOES_NOT_HOLD)
  report.claims.append(reports.Claim(
      "for each transformation there is a specialised neuron in FC4", verdict,
      f"{n_spec} of {n_dir} directions have a unit with specificity and selectivity >= "
      f"{threshold} ({', '.join(info['specialised']) or 'none'}); "
      f"{int(tu.metrics['num_distinct_units'])} distinct top units"))
  explained = np.asarray([tu.metrics[f"explained_{f['direction']}"] for f in info["found"]])
  median = float(np.median(explained))
  verdict = (reports.HOLDS if median >= EXPLAINED_HOLDS else
             reports.WITHIN_NOISE if median >= EXPLAINED_PARTLY else reports.DOES_NOT_HOLD)
  report.claims.append(reports.Claim(
      "raising a transformation unit transforms the generated chair accordingly (Figure 22)",
      verdict, f"median share of the edit explained by T_θ of the unedited chair: {median:.2f} "
      f"(holds >= {EXPLAINED_HOLDS}, partly >= {EXPLAINED_PARTLY}); best: "
      f"{info['found'][int(np.argmax(explained))]['direction']} {explained.max():.2f}"))
  stats = [reports.Stat.of(hm.arrays[f"sharpness_{k}"]) for k in windows]
  report.claims.append(reports.Claim(
      "the chair gets sharper as the FC5 window grows (Figure 24)",
      reports.verdict_increasing(stats),
      "sharpness ×10³ " + ", ".join(f"{k}×{k}: {s.format(1e3)}" for k, s in zip(windows, stats))))
  zeroed = reports.verdict_less_paired(hm.arrays["hf_unchanged"], hm.arrays["hf_zeroed"])
  control = reports.verdict_less_paired(hm.arrays["hf_control"], hm.arrays["hf_zeroed"])
  report.claims.append(reports.Claim(
      "the pre-output maps behind near-empty filters cancel high-frequency artifacts: zeroing "
      "them adds high-frequency energy, more than zeroing other maps (Figure 25)",
      reports.weakest([zeroed[0], control[0]]),
      f"zeroed − unchanged = {zeroed[1].format(100)} %, zeroed − control = "
      f"{control[1].format(100)} % per chair"))
  return report


def info_maps(result) -> str:
  return (f"channels {result.info['maps']} of {result.info['layer']} (control: "
          f"{result.info['control_maps']})")


if __name__ == "__main__":
  app.run(experiment.main(_FLAGS, summarize))
