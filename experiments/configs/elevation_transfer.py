r"""Section 5.3, Figures 10 and 11: elevations seen on one class, generated for another.

`python -m experiments.elevation_transfer --config=experiments/configs/elevation_transfer.py:<arg>`
with arg a scale (test | tiny | paper), optionally `,real` for Aubry's chairs plus ShapeNet
tables (`aubry_chairs/64+shapenet_turntables/tables_64_cropped`, built by the user).

Three 64 px 1s-S-deep nets read one chairs + tables dataset: chairs only (trained at
elevations 20 and 30, as Aubry's renders), tables only (0..40, as the paper's ShapeNet renders)
and both. The procedural turntables hold every elevation 0..90, so each net's error is
measured at every elevation of each class it was trained on; real data has no views at the
unseen elevations, so there only the figures and the trained elevations' errors exist.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import runs

ELEVATIONS = tuple(float(e) for e in range(0, 100, 10))
FIGURE_AZIMUTH = 60.0   # on every procedural grid (10 and 30 degree steps); near Aubry's 58


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config(
      "elevation_transfer", "5.3", "Elevation transfer and extrapolation (Figures 10, 11)",
      arg, variants=("real",))
  scale, real = config.scale, config.variant == "real"
  config.groups = ml_collections.ConfigDict()  # chairs | tables | chairs_tables -> run
  for classes in runs.ELEVATION_CLASSES:
    name, run = runs.elevation_transfer(scale, classes, seed=0, real=real)
    config.runs[name] = run
    config.groups[classes] = name
  config.chair_elevations = runs.CHAIR_ELEVATIONS
  config.table_elevations = runs.TABLE_ELEVATIONS
  config.figure10_elevations = (0.0, 10.0, 20.0, 30.0, 40.0)
  config.figure11_elevations = (50.0, 60.0, 70.0, 80.0, 90.0)
  config.evals = ml_collections.ConfigDict({
      "elevations": {"type": "elevations", "classes": ["chair", "table"],
                     "elevations": list(ELEVATIONS), "figure_models": 3,
                     "figure_azimuth": FIGURE_AZIMUTH,
                     "max_views": {"test": None, "tiny": None, "paper": 2000}[scale]},
  })
  return config
