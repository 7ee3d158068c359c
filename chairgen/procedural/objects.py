"""Procedural objects: a deterministic mesh, its style factors and named keypoints.

`make_object(family, index, seed)` is a pure function of its arguments: the random generator
is seeded from a hash of them (numpy's PCG64 stream is stable across platforms and versions),
so every process, machine and rerun builds the same object. Each family draws all its style
factors first (`sample_factors(rng)`) and builds the mesh from them alone (`build(factors)`),
so `make_object(..., overrides={"armrests": False})` is the same model with only the named
factors changed: the counterfactual ground truth of feature arithmetic (section 5.5). Factors
whose range depends on another (a "low" back's height) are kept as drawn, not redrawn.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from chairgen.procedural import cars, chairs, geometry, tables

FAMILIES = ("chairs", "tables", "cars")
# Each module: sample_factors(rng) -> JSON-serialisable factors; build(factors) -> (mesh in
# metres, factors, ordered keypoints name -> xyz); CHOICES: values of the categorical factors.
_FAMILIES = {"chairs": chairs, "tables": tables, "cars": cars}


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
  if family not in _FAMILIES:
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


def with_overrides(family: str, factors: dict, overrides: Mapping[str, Any]) -> dict:
  """`factors` with the `overrides` applied, each checked against the factor it replaces."""
  out = dict(factors)
  choices = _FAMILIES[family].CHOICES
  for key, value in overrides.items():
    if key not in factors:
      raise ValueError(f"{family} have no factor {key!r}; their factors are {sorted(factors)}")
    old = factors[key]
    if isinstance(old, bool) or isinstance(value, bool):
      ok = isinstance(old, bool) and isinstance(value, (bool, np.bool_))
      value = bool(value)
    elif isinstance(old, str):
      ok = isinstance(value, str) and value in choices.get(key, (value,))
    elif isinstance(old, (int, float)):
      ok = isinstance(value, (int, float, np.integer, np.floating))
      value = type(old)(value)
    else:  # colours: RGB triples
      ok = np.shape(value) == np.shape(old)
      value = tuple(float(v) for v in value)
    if not ok:
      allowed = choices.get(key)
      raise ValueError(f"{family} factor {key!r} cannot be {value!r} (it is {old!r}"
                       f"{'; allowed: ' + ', '.join(allowed) if allowed else ''})")
    out[key] = value
  return out


def make_object(family: str, index: int, seed: int = 0,
                overrides: Mapping[str, Any] | None = None) -> ProceduralObject:
  """Builds model `index` of `family` ("chairs", "tables" or "cars") for `seed`, with the
  named factors replaced by `overrides` (the same model otherwise; same name)."""
  _check(family, index, seed)
  name = object_name(family, int(index), int(seed))
  rng = np.random.default_rng(int(name, 16))
  module = _FAMILIES[family]
  factors = module.sample_factors(rng)
  if overrides:
    factors = with_overrides(family, factors, overrides)
  mesh, factors, keypoints = module.build(factors)
  mesh, keypoints, scale = normalise(mesh, keypoints)
  factors = dict(factors, normalisation_scale=round(scale, 6))
  return ProceduralObject(family, int(index), int(seed), name, factors, keypoints, mesh)


def find_object(name: str, family: str, seed: int = 0, max_index: int = 100_000) -> int:
  """The index of the model called `name` (as stored in datasets) among `family`'s for `seed`."""
  _check(family, 0, seed)
  for index in range(max_index):
    if object_name(family, index, seed) == name:
      return index
  raise KeyError(f"{name!r} is not one of the first {max_index} procedural {family} of seed "
                 f"{seed}: the data was not made by chairgen.procedural with these settings")
