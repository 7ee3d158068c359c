"""Procedural objects: a deterministic mesh, its style factors and named keypoints.

`make_object(family, index, seed)` is a pure function of its arguments: the random generator
is seeded from a hash of them (numpy's PCG64 stream is stable across platforms and versions),
so every process, machine and rerun builds the same object.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from chairgen.procedural import cars, chairs, geometry, tables

FAMILIES = ("chairs", "tables", "cars")
# Builders return (mesh in metres, JSON-serialisable factors, ordered keypoints name -> xyz).
_BUILDERS: dict[str, Callable[[np.random.Generator], tuple[geometry.Mesh, dict, dict]]] = {
    "chairs": chairs.build,
    "tables": tables.build,
    "cars": cars.build,
}


@dataclasses.dataclass(frozen=True)
class ProceduralObject:
  """One model. `mesh` and `keypoints` are normalised: centred, bounding-sphere radius 1."""

  family: str
  index: int
  seed: int
  name: str  # 32 lowercase hex digits.
  factors: dict[str, Any]
  keypoints: dict[str, np.ndarray]  # name -> float32[3], object coordinates.
  mesh: geometry.Mesh

  @property
  def keypoint_names(self) -> list[str]:
    return list(self.keypoints)

  def keypoint_array(self) -> np.ndarray:
    """float32[K, 3] keypoints in the order of `keypoint_names`."""
    if not self.keypoints:
      return np.zeros((0, 3), np.float32)
    return np.stack(list(self.keypoints.values())).astype(np.float32)


def object_name(family: str, index: int, seed: int) -> str:
  """32 hex digits identifying (family, index, seed), shaped like Aubry and ShapeNet ids."""
  return hashlib.md5(f"chairgen/{family}/{seed}/{index}".encode()).hexdigest()


def _check(family: str, index: int, seed: int) -> None:
  if family not in _BUILDERS:
    raise ValueError(f"Unknown family {family!r}; expected one of {FAMILIES}.")
  if not (isinstance(index, (int, np.integer)) and index >= 0):
    raise ValueError(f"Model index must be a non-negative integer, got {index!r}.")
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"Seed must be a non-negative integer, got {seed!r}.")


def normalise(mesh: geometry.Mesh, keypoints: dict[str, np.ndarray]
              ) -> tuple[geometry.Mesh, dict[str, np.ndarray], float]:
  """Centres the bounding box at the origin and scales the bounding sphere to radius 1.

  Every object then fills the frame alike and no view clips it (see `camera`).
  Returns the new mesh, keypoints and the scale applied.
  """
  lo, hi = mesh.positions.min(0), mesh.positions.max(0)
  centre = (lo + hi) / 2
  radius = float(np.linalg.norm(mesh.positions - centre, axis=1).max())
  scale = 1.0 / radius
  out = mesh.transformed(scale, -centre)
  kps = {k: ((np.asarray(v, np.float64) - centre) * scale).astype(np.float32)
         for k, v in keypoints.items()}
  return out, kps, scale


def make_object(family: str, index: int, seed: int = 0) -> ProceduralObject:
  """Builds model `index` of `family` ("chairs", "tables" or "cars") for `seed`."""
  _check(family, index, seed)
  name = object_name(family, int(index), int(seed))
  rng = np.random.default_rng(int(name, 16))
  mesh, factors, keypoints = _BUILDERS[family](rng)
  mesh, keypoints, scale = normalise(mesh, keypoints)
  factors = dict(factors, normalisation_scale=round(scale, 6))
  return ProceduralObject(family, int(index), int(seed), name, factors, keypoints, mesh)
