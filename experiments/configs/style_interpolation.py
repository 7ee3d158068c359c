r"""Section 5.4, Figures 12-15: morphs between two and three styles, and between classes.

`python -m experiments.style_interpolation --config=experiments/configs/style_interpolation.py:<scale>`

No training of its own: the chairs net is section 4.2's 1s-S-deep run, the cars net section
4.3's largest cars run without augmentation, the chairs + tables net section 5.3's. Pairs and
triples are drawn with each evaluator's fixed key; rows are sorted by the measured morph
quality of `chairgen.evaluators.style_morphs` (docs/evaluation.md), not by eye.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import dataset_size
from experiments.configs import runs

NUM_PAIRS = {"test": 2, "tiny": 12, "paper": 12}
VIEW = {"chairs": (34.0, 20.0), "cars": (40.0, 20.0), "chairs_tables": (40.0, 20.0)}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config(
      "style_interpolation", "5.4", "Interpolation between styles (Figures 12-15)", arg)
  scale = config.scale
  chairs, chairs_run = runs.chairs_architecture(scale, "1s-S-deep")
  cars, cars_run = runs.cars_dataset_size(scale, max(dataset_size.SIZES[scale]), False)
  both, both_run = runs.elevation_transfer(scale, "chairs_tables")
  config.groups = ml_collections.ConfigDict({"chairs": chairs, "cars": cars,
                                             "chairs_tables": both})
  for name, run in ((chairs, chairs_run), (cars, cars_run), (both, both_run)):
    config.runs[name] = run
  n, frames = NUM_PAIRS[scale], 33

  def morphs(family, **extra):
    az, el = VIEW[family]
    return dict(type="style_morphs", num_pairs=n, num_frames=frames, show=9, azimuth=az,
                elevation=el, runs=[config.groups[family]], **extra)

  config.evals = ml_collections.ConfigDict({
      "figure12": morphs("chairs"),
      "figure13": morphs("cars"),
      "figure14": {"type": "style_triangles", "n": 5, "azimuth": VIEW["chairs"][0],
                   "elevation": VIEW["chairs"][1], "runs": [chairs]},
      "figure15": morphs("chairs_tables", classes=["chair", "table"]),
  })
  return config
