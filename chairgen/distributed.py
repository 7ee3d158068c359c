"""Runs over several processes (hosts of a pod, or processes of one machine).

Every process runs the same program on the same inputs (SPMD); this module holds what that
needs besides jit's shardings:

- `initialize`: `jax.distributed.initialize`, with the coordinator, process count and id
  passed explicitly where JAX cannot detect them (TPU pods, SLURM, Open MPI and the like
  detect them by themselves);
- `is_primary`: files (reports, figures, eval results, run metadata) are written by process 0
  only; the workdir lives on a filesystem every process sees, as Orbax requires anyway;
- `wait_for_primary`: a named barrier through the coordination service, with a timeout long
  enough for work only the primary does (building a dataset);
- `global_array` / `to_host`: numpy ↔ global `jax.Array`. Every process holds the same full
  numpy array (same inputs, same seeds), so each one fills its own devices' shards from it,
  and reads results back as a whole through an all-gather.

With one process every function here is a no-op or a plain `device_put` / `np.asarray`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

# Work the primary does while the others wait (rendering a procedural dataset at the paper's
# size takes hours on a small host); a barrier that times out earlier would kill the run.
PRIMARY_WORK_TIMEOUT_S = 24 * 3600


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """`jax.distributed.initialize`, naming the flags to pass when JAX cannot detect the cluster.

  Give all three (a plain set of processes, e.g. several on one machine), or none (a
  cluster JAX detects: Cloud TPU pods, SLURM, Open MPI, Kubernetes JobSets).
  """
  given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
           "process_id": process_id}
  missing = [k for k, v in given.items() if v is None]
  if missing and len(missing) < len(given):
    raise ValueError(
        f"--distributed: pass all of --coordinator_address, --num_processes and --process_id, "
        f"or none of them (a cluster JAX detects by itself); missing: "
        f"{', '.join('--' + m for m in missing)}")
  if num_processes is not None and not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id} must be in [0, --num_processes={num_processes})")
  import jax  # pylint: disable=g-import-not-at-top
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except ValueError as e:
    if not missing:
      raise
    raise ValueError(
        f"--distributed could not detect the cluster ({e}). Outside TPU pods, SLURM, Open MPI "
        "and Kubernetes, start every process with --coordinator_address=HOST:PORT (process "
        "0's address), --num_processes=N and --process_id=0..N-1.") from e


def is_primary() -> bool:
  """Whether this process writes files (process 0). Without JAX imported there is one process
  (the image and report writers then need not import it)."""
  jax = sys.modules.get("jax")
  return jax is None or jax.process_index() == 0


def wait_for_primary(name: str, timeout_s: int = PRIMARY_WORK_TIMEOUT_S) -> None:
  """Every process waits here until all have arrived (the primary after its extra work).

  Every process passes the same barriers in the same order (SPMD); the n-th use of a name is
  a barrier of its own, as the coordination service wants each key used once."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() == 1:
    return
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  _BARRIER_USES[name] = _BARRIER_USES.get(name, 0) + 1
  key = f"chairgen:{name}:{_BARRIER_USES[name]}"
  ocp.multihost.get_barrier_sync_fn()(key=key, timeout_ms=int(timeout_s * 1000))


_BARRIER_USES: dict[str, int] = {}


def global_array(value: np.ndarray, sharding) -> Any:
  """A global `jax.Array` with `sharding` from the full value, which every process holds."""
  import jax  # pylint: disable=g-import-not-at-top
  value = np.asarray(value)
  return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def to_host(tree: Any) -> Any:
  """numpy copies of a pytree of (possibly global) arrays, the whole value on every process."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
  return jax.tree.map(one, tree)
