r"""Training configs: the paper's settings and small variants for the CPU.

Usage: `python -m experiments.train --config=experiments/configs/default.py:<preset>`
with <preset> one of PRESETS (default `paper`). Any field can be overridden on the command
line, e.g. `--config.train.batch_size=64 --config.model.name=1s-S`.

Presets
  paper        1s-S-deep at 128 px, Adam 5e-4, batch 128, 500k steps, halving every 100k
               after 250k (section 4.1), augmentation on (section 3), trained on every
               view (split `all`, the training set of Table 1).
  1s-S-deep, 1s-S, 1s-S-wide, 2s-S, 2s-E
               the architectures of section 4.2 with the paper's schedule and split.
  vae_kl10, vae
               the variational model of Appendix A with KL weight x10 and x1: Figure 17 (e)
               and (f) respectively ("in (e) the KL-divergence term ... was weighted 10 times
               higher than in (f)").
  cars256      1s-S-deep at 256 px (one more up-convolution), section 4.1.
  tiny         the quick start: procedural chairs at 64 px, trains in < 10 min on 2 CPU cores.
  tiny_vae     the VAE on the same data.
  test         a few steps of a narrow network at 32 px, for the test suite.
"""

import ml_collections

from chairgen import augment
from chairgen import input_pipeline
from chairgen import losses
from chairgen import models

ARCHITECTURES = ("1s-S-deep", "1s-S", "1s-S-wide", "2s-S", "2s-E")
PRESETS = ("paper",) + ARCHITECTURES + ("vae", "vae_kl10", "cars256", "tiny", "tiny_vae",
                                        "test")


def paper_config() -> ml_collections.ConfigDict:
  """Section 4.1: the settings every preset starts from."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = input_pipeline.default_config()
  config.data.name = "procedural_turntables/chairs_128"  # 809 chairs, as the paper's set
  config.model = models.default_config()          # 1s-S-deep
  config.loss = losses.default_config()
  config.augment = augment.default_config()

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 5e-4
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-6
  config.optimizer.num_steps = 500_000
  config.optimizer.decay_start = 250_000
  config.optimizer.decay_every = 100_000
  config.optimizer.decay_factor = 0.5

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 128
  config.train.log_every = 100
  config.train.eval_every = 5_000
  config.train.checkpoint_every = 5_000
  config.train.max_checkpoints_to_keep = 3
  config.train.progress_bar = True

  # Evaluators run every `every` (default train.eval_every) steps and at the end; see
  # chairgen/evaluators/. `heldout` writes the samples/ pictures and heldout_* scalars.
  config.evals = ml_collections.ConfigDict({
      "heldout": {"type": "reconstruction", "split": "test", "max_examples": 256}})
  return config


def set_schedule(config, num_steps: int) -> None:
  """Scales the paper's schedule (constant for half, then halving every fifth) to num_steps."""
  opt = config.optimizer
  opt.num_steps = num_steps
  opt.decay_start = num_steps // 2
  opt.decay_every = max(1, num_steps // 5)


def _short_run(config, *, data: str, width: float, batch_size: int, num_steps: int,
               log_every: int, eval_every: int, num_eval_examples: int) -> None:
  """A small variant of the paper's run: data, network width, batch and schedule length."""
  config.data.name = data
  config.model.width_multiplier = width
  config.train.batch_size = batch_size
  set_schedule(config, num_steps)
  config.train.log_every = log_every
  config.train.eval_every = config.train.checkpoint_every = eval_every
  config.evals.heldout.max_examples = num_eval_examples


def make_vae(config, kl_weight: float) -> None:
  """Appendix A: the style stream's FC2 becomes z ~ q(z|c), trained on the variational bound."""
  config.model.vae = True
  config.loss.mask_loss = "vae"
  config.loss.kl_weight = float(kl_weight)


def get_config(preset: str = "paper") -> ml_collections.ConfigDict:
  preset = preset or "paper"
  if preset not in PRESETS:
    raise ValueError(f"unknown config preset {preset!r}; choose one of {', '.join(PRESETS)} "
                     "(e.g. --config=experiments/configs/default.py:tiny)")
  config = paper_config()
  if preset in ("paper",) + ARCHITECTURES:
    # Table 1 is the error on the training set of networks trained on every view.
    config.data.split = "all"
  if preset in ARCHITECTURES:
    config.model.name = preset
    config.loss.mask_loss = models.mask_loss_for(preset)
  elif preset in ("vae", "vae_kl10", "tiny_vae"):
    make_vae(config, 10.0 if preset == "vae_kl10" else 1.0)
  elif preset == "cars256":
    config.data.name = "procedural_turntables/cars_256"  # or shapenet_turntables/cars_256

  if preset in ("tiny", "tiny_vae"):
    # Half the channels (~4x cheaper on 2 CPU cores) and no augmentation: in a few minutes
    # T_θ costs more reconstruction quality than it buys (section 4.3); enable it with
    # --config.augment.enabled=True.
    _short_run(config, data="procedural_turntables/tiny", width=0.5, batch_size=32,
               num_steps=1_500, log_every=25, eval_every=500, num_eval_examples=64)
    config.augment.enabled = False
  elif preset == "test":
    _short_run(config, data="procedural_turntables/test", width=0.125, batch_size=8,
               num_steps=4, log_every=2, eval_every=2, num_eval_examples=8)
    config.train.progress_bar = False
  return config
