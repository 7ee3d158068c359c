r"""Trains a generator: `python -m experiments.train --config=<file>:<preset> --workdir=DIR`.

Resumes from the latest checkpoint in DIR; SIGTERM saves a checkpoint and exits cleanly.
Several processes (a TPU/GPU pod, or processes of one machine): pass --distributed to each
(and --coordinator_address, --num_processes, --process_id where JAX cannot detect the cluster);
see docs/training.md.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from chairgen import cli
from chairgen import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", "experiments/configs/default.py:tiny", "Training config file and preset.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and samples go.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  cli.start(argv)
  logging.info("JAX devices: %s (process %d of %d)", jax.devices(), jax.process_index(),
               jax.process_count())
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
