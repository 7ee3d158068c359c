r"""Section 5.5, Figure 16: feature arithmetic at the style input, FC1 and FC2, measured
against the chair the arithmetic should produce.

`python -m experiments.feature_arithmetic --config=experiments/configs/feature_arithmetic.py:<scale>`

Reads section 4.2's 1s-S-deep chairs run (procedural chairs: the counterfactual ground truth
is the base chair rendered with the one factor changed, `chairgen.procedural.make_object(...,
overrides=...)`). The attributes are the paper's two (an armchair made armless, a stick back
made solid) and the reverse of the first; `test` uses the changes its 4 chairs allow.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import runs

ATTRIBUTES = {
    "paper": [
        {"name": "no_arms", "factor": "armrests", "from": True, "to": False},
        {"name": "solid_back", "factor": "back_style", "from": "spindle", "to": "solid"},
        {"name": "with_arms", "factor": "armrests", "from": False, "to": True},
    ],
    # The 4 test chairs: one armchair, one spindle back; these changes have 2 + 1 chairs.
    "test": [
        {"name": "with_arms", "factor": "armrests", "from": False, "to": True},
        {"name": "straight_legs", "factor": "leg_style", "from": "four_splayed",
         "to": "four_straight"},
    ],
}
VIEWS = [[30.0, 20.0], [120.0, 20.0], [210.0, 20.0], [300.0, 20.0]]


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config(
      "feature_arithmetic", "5.5", "Feature space arithmetics (Figure 16)", arg)
  scale = config.scale
  chairs, chairs_run = runs.chairs_architecture(scale, "1s-S-deep")
  config.runs[chairs] = chairs_run
  config.evals = ml_collections.ConfigDict({
      "figure16": {"type": "feature_arithmetic",
                   "attributes": ATTRIBUTES["test" if scale == "test" else "paper"],
                   "layers": ["input", "style_fc1", "style_fc2"],
                   "differences": ["pair", "mean"], "views": VIEWS,
                   "max_bases": {"test": 2, "tiny": 8, "paper": 16}[scale]},
  })
  return config
