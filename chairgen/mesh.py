"""The device mesh every jitted computation shares: one `data` axis over all devices.

Training shards the batch over it and replicates the state; inference shards the images it
draws the same way, so the same code runs on one CPU, on forced host devices and on a TPU pod.
"""

from __future__ import annotations

from typing import Iterable

import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np

DATA_AXIS = "data"


def create_mesh(devices: Iterable[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over all devices (or the given ones) with the batch axis `data`.

  The axis is `Auto`: jit's in/out shardings fix where the batch and state live and XLA
  propagates the rest (the model's replicated streams mix freely with the sharded batch).
  Devices are in process order (stable within a process), so that the batch rows of process
  p, placed by `jax.make_array_from_process_local_data`, are block p of the global batch, as
  the input pipeline cuts them.
  """
  axis_types = (jax.sharding.AxisType.Auto,)
  if devices is None:
    devices = jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=axis_types
                            ).devices.flat
  devices = sorted(devices, key=lambda d: d.process_index)  # stable: keeps order in a process
  return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=axis_types)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading axis split over `data`, the rest replicated."""
  return NamedSharding(mesh, P(DATA_AXIS))
