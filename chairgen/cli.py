"""What every absl entry point under experiments/ and tools/ does first."""

from absl import app
from absl import flags
from absl import logging


def start(argv) -> None:
  """Rejects stray positional arguments and quiets INFO logs unless --verbosity was given.

  Orbax logs every checkpoint save at INFO; `--verbosity=0` shows those logs again.
  """
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags take --name=value)")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
