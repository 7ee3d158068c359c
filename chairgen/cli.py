"""What every absl entry point under experiments/ and tools/ does first."""

from absl import app
from absl import flags
from absl import logging

from chairgen import host_memory


def start(argv) -> None:
  """Tunes host malloc, rejects stray positional arguments, quiets INFO logs.

  `host_memory.configure()` has to run before JAX's first computation (see its module).
  Orbax logs every checkpoint save at INFO; `--verbosity=0` shows those logs again.
  """
  host_memory.configure()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags take --name=value)")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
