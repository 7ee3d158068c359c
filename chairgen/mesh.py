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
  """
  axis_types = (jax.sharding.AxisType.Auto,)
  if devices is None:
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=axis_types)
  return jax.sharding.Mesh(np.asarray(list(devices)), (DATA_AXIS,), axis_types=axis_types)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading axis split over `data`, the rest replicated."""
  return NamedSharding(mesh, P(DATA_AXIS))
