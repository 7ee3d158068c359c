"""The catalogue of named training runs that the paper-section experiments share.

Each function returns (name, training config) for a scale; every section that needs a run asks
for it here, so the same name always means the same config and the run trains once in
`<runs_dir>/<scale>/<name>` (chairgen.runs checks the identity). Scales:

  test   seconds: the test preset's narrow network, 4 steps, 32 px procedural data (CI).
  tiny   the CPU reproduction: 64 px, a quarter of the channels, short schedules (Adam and
         the paper's schedule shape scaled to the steps), batch 32.
  paper  the paper's presets (128 px, batch 128, 500k steps), for a GPU or TPU.
"""

from __future__ import annotations

import ml_collections

from chairgen import models
from experiments.configs import default

# What `tiny` trains on and how long (chosen before any tiny run, to fit ~60 min per section
# on 2 CPU cores: 1s-S-deep at width 0.25 takes ~0.1 s per step of 32 images at 64 px).
TINY = ml_collections.ConfigDict({
    "width": 0.25, "batch_size": 32, "eval_every": 500,
    "chairs": "procedural_turntables/chairs_aubry_tiny", "chairs_steps": 3000,
    "cars": "procedural_turntables/cars_tiny", "cars_steps": 1500,
    "augmented_steps": 4000,
    "interp_chairs": "procedural_turntables/chairs_aubry_80", "interp_steps": 2000,
    "chairs_tables": "procedural_turntables/chairs_tables_32", "elevation_steps": 3000,
})
# Section 5.3's training elevations: chairs as Aubry's renders, tables as the paper's ShapeNet.
CHAIR_ELEVATIONS = (20.0, 30.0)
TABLE_ELEVATIONS = (0.0, 10.0, 20.0, 30.0, 40.0)
# Real data (`<section>.py:<scale>,real`): Aubry's chairs and ShapeNet tables in the R2N2
# layout, cropped per model as aubry_chairs crops (docs/datasets.md, "Chairs and tables").
REAL = {"chairs": "aubry_chairs/{size}", "interp_chairs": "aubry_chairs/{size}",
        "chairs_tables": "aubry_chairs/{size}+shapenet_turntables/tables_{size}_cropped"}
PAPER_CARS = "shapenet_turntables/cars_128"   # 7124 ShapeNet cars (bring your own copy)
VAE_PRESETS = {"vae": 1.0, "vae_kl10": 10.0}   # preset -> KL weight (Appendix A)


def _base(scale: str, preset: str, *, data: str, num_steps: int | None = None):
  """The training config of `preset` at `scale`."""
  if scale == "paper":
    config = default.get_config(preset)
    config.data.name = data
    return config
  config = default.get_config("test" if scale == "test" else "tiny")
  if preset in default.ARCHITECTURES:
    config.model.name = preset
    config.loss.mask_loss = models.mask_loss_for(preset)
  elif preset in VAE_PRESETS:
    default.make_vae(config, VAE_PRESETS[preset])
  if scale == "tiny":
    config.data.name = data
    config.model.width_multiplier = TINY.width
    config.train.batch_size = TINY.batch_size
    default.set_schedule(config, num_steps)
    config.train.eval_every = config.train.checkpoint_every = TINY.eval_every
    config.train.log_every = 50
  else:
    config.data.name = data
  return config


def _data(scale: str, family: str, real: bool = False) -> str:
  if real:  # the smallest upstream configs at test/tiny, the paper's 64 px otherwise
    return REAL[family].format(size=64)
  if scale == "test":
    return {"chairs": "procedural_turntables/test", "cars": "procedural_turntables/cars_test",
            "interp_chairs": "procedural_turntables/test",
            "chairs_tables": "procedural_turntables/chairs_tables_test"}[family]
  if scale == "tiny":
    return TINY[family]
  return {"chairs": "procedural_turntables/chairs_128", "cars": PAPER_CARS,
          "interp_chairs": "procedural_turntables/chairs_aubry_64",
          "chairs_tables": "procedural_turntables/chairs_tables_64"}[family]


def chairs_architecture(scale: str, arch: str, seed: int = 0, real: bool = False):
  """Section 4.2: one architecture on the chairs, 2 views per chair held out (Table 1's second
  column); tiny and test train without augmentation (too short to profit from it). real:
  Aubry's chairs (128 px at the paper scale, 64 px below), for section 5.7 on real pairs."""
  data = (REAL["chairs"].format(size=128 if scale == "paper" else 64) if real
          else _data(scale, "chairs"))
  config = _base(scale, arch, data=data, num_steps=TINY.chairs_steps)
  config.seed = seed
  config.data.split = "heldout_views"
  if scale != "paper":
    config.augment.enabled = False
  return f"chairs_{arch}{'_real' if real else ''}_seed{seed}", config


def cars_dataset_size(scale: str, num_models: int, augment: bool, seed: int = 0):
  """Section 4.3: 1s-S-deep on the first `num_models` cars, with or without augmentation."""
  config = _base(scale, "1s-S-deep", data=_data(scale, "cars"), num_steps=TINY.cars_steps)
  config.seed = seed
  config.data.split = "heldout_views"
  config.data.num_models = int(num_models)
  config.augment.enabled = bool(augment)
  return f"cars_{num_models}models_{'aug' if augment else 'noaug'}_seed{seed}", config


def chairs_augmented(scale: str, seed: int = 0):
  """Section 5.1 (and the later sections' chairs net): 1s-S-deep with augmentation."""
  config = _base(scale, "1s-S-deep", data=_data(scale, "chairs"),
                 num_steps=TINY.augmented_steps)
  config.seed = seed
  config.data.split = "heldout_views"
  config.augment.enabled = True
  return f"chairs_1s-S-deep_aug_seed{seed}", config


def chairs_analysis(scale: str, seed: int = 0, steps_factor: int = 1):
  """Section 6: the "2s-E" net on the chairs with augmentation (its FC4 transformation units
  need θ to vary in training), trained as section 5.1's augmented 1s-S-deep run;
  `steps_factor` > 1 trains it that many times longer (tiny and test; `..._x<factor>`)."""
  if steps_factor < 1 or (steps_factor > 1 and scale == "paper"):
    raise ValueError(f"steps_factor must be 1 at the paper scale and >= 1 otherwise, got "
                     f"{steps_factor}")
  config = _base(scale, "2s-E", data=_data(scale, "chairs"),
                 num_steps=TINY.augmented_steps * steps_factor)
  if scale == "test" and steps_factor > 1:
    default.set_schedule(config, config.optimizer.num_steps * steps_factor)
  config.seed = seed
  config.data.split = "heldout_views"
  config.augment.enabled = True
  longer = f"_x{steps_factor}" if steps_factor > 1 else ""
  return f"chairs_2s-E_aug{longer}_seed{seed}", config


def chairs_vae(scale: str, kl_weight: float, seed: int = 0, steps_factor: int = 1):
  """Section 5.6 (e, f): the VAE of Appendix A on the chairs, trained as the 1s-S-deep run of
  `chairs_architecture` (same data, split, augmentation and steps), the deterministic net
  that sections 5.4-5.6 read, so that their samples compare; `steps_factor` > 1 trains it that
  many times longer (tiny and test; named `..._x<factor>`)."""
  presets = {w: p for p, w in VAE_PRESETS.items()}
  if float(kl_weight) not in presets:
    raise ValueError(f"kl_weight must be one of {sorted(presets)} (Figure 17 e, f), got "
                     f"{kl_weight!r}")
  if steps_factor < 1 or (steps_factor > 1 and scale == "paper"):
    raise ValueError(f"steps_factor must be 1 at the paper scale and >= 1 otherwise, got "
                     f"{steps_factor}")
  config = _base(scale, presets[float(kl_weight)], data=_data(scale, "chairs"),
                 num_steps=TINY.chairs_steps * steps_factor)
  if scale == "test" and steps_factor > 1:
    default.set_schedule(config, config.optimizer.num_steps * steps_factor)
  config.seed = seed
  config.data.split = "heldout_views"
  if scale != "paper":
    config.augment.enabled = False
  longer = f"_x{steps_factor}" if steps_factor > 1 else ""
  return f"chairs_vae_kl{float(kl_weight):g}{longer}_seed{seed}", config


def view_interpolation(scale: str, k: int, transfer: bool, seed: int = 0, real: bool = False):
  """Section 5.2: 1s-S-deep at 64 px, 10 % of the chairs are targets with k views each; the
  source chairs keep all views (transfer) or the same k (no transfer). tiny and test train
  without augmentation, as section 4.2's tiny runs."""
  config = _base(scale, "1s-S-deep", data=_data(scale, "interp_chairs", real),
                 num_steps=TINY.interp_steps)
  config.seed = seed
  config.data.split = "by_style"
  # 10 % as the paper; the test data has 4 chairs, so one of them is the target there.
  config.data.target_fraction = 0.25 if scale == "test" else 0.1
  config.data.views_per_target_style = int(k)
  config.data.transfer = bool(transfer)
  if scale == "test":
    config.train.batch_size = 4  # k = 1 without transfer leaves 4 views of 4 test chairs
  if scale != "paper":
    config.augment.enabled = False
  name = f"interp_k{k}_{'transfer' if transfer else 'notransfer'}"
  return f"{name}{'_real' if real else ''}_seed{seed}", config


ELEVATION_CLASSES = {"chairs": ("chair",), "tables": ("table",), "chairs_tables": ("chair", "table")}


def elevation_transfer(scale: str, classes: str, seed: int = 0, real: bool = False):
  """Section 5.3: 1s-S-deep at 64 px on chairs (elevations 20, 30 only), tables (0..40) or both,
  read from one chairs + tables dataset (`classes`: a key of ELEVATION_CLASSES)."""
  if classes not in ELEVATION_CLASSES:
    raise ValueError(f"classes must be one of {sorted(ELEVATION_CLASSES)}, got {classes!r}")
  config = _base(scale, "1s-S-deep", data=_data(scale, "chairs_tables", real),
                 num_steps=TINY.elevation_steps)
  config.seed = seed
  config.data.split = "by_elevation"
  config.data.elevation_classes = ELEVATION_CLASSES[classes]
  config.data.train_elevations = {"chair": CHAIR_ELEVATIONS, "table": TABLE_ELEVATIONS}
  if scale != "paper":
    config.augment.enabled = False
  return f"elevation_{classes}{'_real' if real else ''}_seed{seed}", config
