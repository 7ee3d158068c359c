r"""Section 4.3, Table 2 and Figures 5-6: training-set size and augmentation, on cars.

`python -m experiments.dataset_size --config=experiments/configs/dataset_size.py:<scale>`.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import runs

PAPER_SIZES = (500, 1000, 3000, 7124)
PAPER_MSE = {500: 0.48e-3, 1000: 0.66e-3, 3000: 0.84e-3, 7124: 0.97e-3, "aug": 1.18e-3}
# The sweep: the paper's, and a geometric one that fits a CPU (tiny) or a test (test).
SIZES = {"test": (2, 4), "tiny": (25, 50, 100, 200), "paper": PAPER_SIZES}
SEEDS = {"test": (0, 1), "tiny": (0, 1), "paper": (0,)}  # test: the spread path
# Figure 5's cars: fixed indices chosen before training, (style, azimuth, elevation).
FIGURE_VIEWS = {
    "test": [[0, 30, 20], [1, 120, 10]],
    "tiny": [[0, 40, 20], [5, 120, 10], [11, 220, 30], [17, 300, 20]],
    "paper": [[0, 40, 20], [5, 120, 10], [11, 220, 30], [17, 300, 20]],
}
MORPH_PAIRS = {"test": [[0, 1]], "tiny": [[0, 1], [2, 3], [4, 5], [6, 7]],
               "paper": [[0, 1], [2, 3], [4, 5], [6, 7]]}


def get_config(scale: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config(
      "dataset_size", "4.3", "Training set size and data augmentation (Table 2, Figures 5 and 6)",
      scale)
  scale = config.scale
  config.sizes = SIZES[scale]
  config.augmented_size = SIZES[scale][1]   # the analog of the paper's 1000aug
  config.seeds = SEEDS[scale]
  config.groups = ml_collections.ConfigDict()   # column label -> its runs (one per seed)
  columns = [(str(n), n, False) for n in config.sizes] + [
      (f"{config.augmented_size}aug", config.augmented_size, True)]
  for label, n, aug in columns:
    names = []
    for seed in config.seeds:
      name, run = runs.cars_dataset_size(scale, n, aug, seed)
      config.runs[name] = run
      names.append(name)
    config.groups[label] = names
  same_size = (config.groups[str(config.augmented_size)]
               + config.groups[f"{config.augmented_size}aug"])
  train_views = {"test": None, "tiny": 4000, "paper": 20_000}[scale]
  config.evals = ml_collections.ConfigDict({
      # Table 2: the error on the training views.
      "train_views": {"type": "reconstruction", "split": "train", "max_examples": train_views},
      "heldout_views": {"type": "reconstruction", "split": "test"},
      "figure5": {"type": "views", "views": FIGURE_VIEWS[scale]},
      # Figure 6 and its number: 32-frame morphs, without vs with augmentation.
      "figure6": {"type": "morph", "pairs": MORPH_PAIRS[scale], "num_frames": 32,
                  "azimuth": 40.0, "elevation": 20.0, "runs": same_size},
  })
  return config
