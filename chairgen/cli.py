"""What every absl entry point under experiments/ and tools/ does first.

Every entry point takes the multi-process flags: `--distributed` calls
`jax.distributed.initialize()`; on a cluster JAX detects (Cloud TPU pods, SLURM, Open MPI,
Kubernetes) nothing else is needed; elsewhere pass `--coordinator_address=HOST:PORT`,
`--num_processes=N` and `--process_id=I` to each of the N processes (see docs/training.md).
"""

from absl import app
from absl import flags
from absl import logging

from chairgen import host_memory

_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Run as one of several processes (jax.distributed.initialize()).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "With --distributed, where JAX cannot detect the cluster: "
    "HOST:PORT of process 0's coordinator.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "With --distributed: the number of processes.", lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "With --distributed: this process's index, 0 .. num_processes-1.",
    lower_bound=0)


def echo(*args) -> None:
  """print() on process 0 only: one copy of a run's messages, from the process that writes."""
  from chairgen import distributed  # pylint: disable=g-import-not-at-top
  if distributed.is_primary():
    print(*args, flush=True)


def start(argv) -> None:
  """Tunes host malloc, rejects stray positional arguments, quiets INFO logs, and joins the
  other processes when --distributed.

  `host_memory.configure()` has to run before JAX's first computation (see its module).
  Orbax logs every checkpoint save at INFO; `--verbosity=0` shows those logs again.
  """
  host_memory.configure()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags take --name=value)")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  explicit = [f for f in (_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID) if f.value is not None]
  if explicit and not _DISTRIBUTED.value:
    raise app.UsageError(f"--{explicit[0].name} is a flag of multi-process runs: add "
                         "--distributed")
  if _DISTRIBUTED.value:
    from chairgen import distributed  # pylint: disable=g-import-not-at-top
    try:
      distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except ValueError as e:
      raise app.UsageError(str(e)) from e
