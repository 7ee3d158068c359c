r"""Section 5.2, Figures 8 and 9: unseen views of target chairs, with and without transfer.

`python -m experiments.view_interpolation --config=experiments/configs/view_interpolation.py:<arg>`
with arg a scale (test | tiny | paper), optionally `,real` for Aubry's chairs
(`aubry_chairs/64`, built by the user; see docs/datasets.md).

Per k in KS, two 64 px 1s-S-deep runs share one target set (10 % of the chairs, seeded): the
target chairs keep k views, evenly spaced on one elevation ring; the source chairs keep all
views ('transfer') or the same k ('notransfer'). The error of Figure 9 is over every missing
view of that ring of every target chair (chairgen.splits.by_style), and the nearest-neighbour
baselines (chairgen.viewpoints) predict the same views from the with-transfer runs' sources.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import runs

PAPER_KS = (1, 2, 4, 8, 15)
KS = {"test": (1, 2), "tiny": PAPER_KS, "paper": PAPER_KS}
KS_TEST_REAL = (1,)  # the real-data code path in CI, on 4 chairs: one k suffices


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config(
      "view_interpolation", "5.2",
      "Interpolation between viewpoints, with and without knowledge transfer (Figures 8, 9)",
      arg, variants=("real",))
  scale, real = config.scale, config.variant == "real"
  config.ks = KS_TEST_REAL if real and scale == "test" else KS[scale]
  config.groups = ml_collections.ConfigDict()  # 'k<k>_transfer' / 'k<k>_notransfer' -> run
  for k in config.ks:
    for transfer in (True, False):
      name, run = runs.view_interpolation(scale, k, transfer, seed=0, real=real)
      config.runs[name] = run
      config.groups[f"k{k}_{'transfer' if transfer else 'notransfer'}"] = name
  with_transfer = [config.groups[f"k{k}_transfer"] for k in config.ks]
  config.evals = ml_collections.ConfigDict({
      # Figure 9: every missing view of every target chair.
      "missing_views": {"type": "reconstruction", "split": "test", "max_examples": None},
      # Figure 8: three target chairs turned from one given view to the next.
      "figure8": {"type": "interpolation", "num_styles": 3, "num_columns": 9},
      # The nearest-neighbour baselines need the sources' every view: the transfer runs.
      "nn_rgb": {"type": "nearest_neighbour", "feature": "rgb", "runs": with_transfer},
      "nn_hog": {"type": "nearest_neighbour", "feature": "hog", "runs": with_transfer},
  })
  return config
