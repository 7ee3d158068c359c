r"""Section 5.1, Figure 7: a net trained with augmentation draws transformed chairs.

`python -m experiments.transformations --config=experiments/configs/transformations.py:<scale>`.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import runs

STYLES = {"test": (0, 1), "tiny": tuple(range(8)), "paper": tuple(range(8))}


def get_config(scale: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config("transformations", "5.1",
                                 "Modeling transformations (Figure 7)", scale)
  scale = config.scale
  name, run = runs.chairs_augmented(scale)
  config.run = name
  config.runs = ml_collections.ConfigDict({name: run})
  config.evals = ml_collections.ConfigDict({
      "figure7": {"type": "transformations", "styles": STYLES[scale], "num_columns": 7},
  })
  return config
