r"""Section 4.2, Table 1 and Figure 4: five architectures trained on the same chairs.

`python -m experiments.architectures --config=experiments/configs/architectures.py:<scale>`
with scale test | tiny | paper (see experiments/configs/runs.py).
"""

import ml_collections

from chairgen import experiment

from experiments.configs import default
from experiments.configs import runs

# Table 1 (MSE x 1e-3) and the expanding parts' parameter counts, in millions.
PAPER_MSE = {"1s-S-deep": 2.90e-3, "1s-S": 3.51e-3, "1s-S-wide": 3.41e-3, "2s-S": 3.44e-3,
             "2s-E": 3.43e-3}
PAPER_PARAMS_M = {"1s-S-deep": 19, "1s-S": 18, "1s-S-wide": 23, "2s-S": 27, "2s-E": 27}
SEEDS = {"test": (0,), "tiny": (0, 1), "paper": (0,)}  # test: as paper
# Figure 4's views: (style, azimuth, elevation) on each scale's grid.
FIGURE_VIEWS = {
    "test": [[0, 30, 20], [1, 120, 10], [2, 210, 30], [3, 300, 20]],
    "tiny": [[0, 34, 20], [1, 139, 30], [2, 232, 20], [3, 46, 30], [4, 301, 20], [5, 92, 30]],
    "paper": [[0, 30, 20], [1, 140, 30], [2, 230, 20], [3, 50, 30], [4, 300, 20],
              [5, 90, 30]],
}


def get_config(scale: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config("architectures", "4.2",
                                 "Comparing network architectures (Table 1, Figure 4)", scale)
  scale = config.scale
  config.seeds = SEEDS[scale]
  config.architectures = default.ARCHITECTURES
  config.groups = ml_collections.ConfigDict()   # architecture -> its runs (one per seed)
  for arch in default.ARCHITECTURES:
    names = []
    for seed in config.seeds:
      name, run = runs.chairs_architecture(scale, arch, seed)
      config.runs[name] = run
      names.append(name)
    config.groups[arch] = names
  train_views = {"test": None, "tiny": None, "paper": 20_000}[scale]
  config.evals = ml_collections.ConfigDict({
      # Table 1: the error on the views the network was trained on.
      "train_views": {"type": "reconstruction", "split": "train", "max_examples": train_views},
      # Beyond the paper: the same on the 2 views per chair that training never saw.
      "heldout_views": {"type": "reconstruction", "split": "test"},
      "figure4": {"type": "views", "views": FIGURE_VIEWS[scale]},
  })
  return config
