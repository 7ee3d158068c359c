"""Figure building blocks shared by `experiments/sample.py` and the paper-section experiments.

Each function draws images from a `chairgen.inference.Trained` generator and returns float
images composited on white, shaped for `chairgen.imaging.write_grid` / `write_strip`.
"""

from __future__ import annotations

import numpy as np

from chairgen import augment


def mix_styles(num_styles: int, indices, weights) -> np.ndarray:
  """A style vector that puts `weights` (normalised to sum 1) on the given model indices."""
  indices = np.asarray(indices, np.int64)
  weights = np.asarray(weights, np.float32)
  if indices.shape != weights.shape:
    raise ValueError(f"indices {indices.shape} and weights {weights.shape} must match")
  if np.any(weights < 0) or weights.sum() <= 0:
    raise ValueError("style weights must be non-negative and not all zero")
  style = np.zeros(num_styles, np.float32)
  np.add.at(style, indices, weights / weights.sum())
  return style


def morph_styles(num_styles: int, a: int, b: int, num: int) -> np.ndarray:
  """[num, M] style vectors moving linearly from one-hot a to one-hot b (section 5.4)."""
  ts = np.linspace(0.0, 1.0, num, dtype=np.float32)
  return np.stack([mix_styles(num_styles, [a, b], [1.0 - t, t]) for t in ts])


def rotation_strip(trained, style: int, *, elevation: float = 20.0, num: int = 12
                   ) -> np.ndarray:
  """[num, S, S, 3]: one model turned through 360° of azimuth at a fixed elevation."""
  azimuths = np.arange(num, dtype=np.float32) * (360.0 / num)
  styles = np.repeat(trained.one_hot([style]), num, axis=0)
  return trained.generate(styles, azimuths, np.full(num, elevation, np.float32)).composite


def elevation_strip(trained, style: int, *, azimuth: float = 30.0,
                    elevations=tuple(range(0, 100, 10))) -> np.ndarray:
  """[len(elevations), S, S, 3]: one model seen from increasing elevations (section 5.3)."""
  elevations = np.asarray(elevations, np.float32)
  styles = np.repeat(trained.one_hot([style]), len(elevations), axis=0)
  return trained.generate(styles, np.full(len(elevations), azimuth, np.float32),
                          elevations).composite


def morph_strip(trained, a: int, b: int, *, num: int = 8, azimuth: float = 30.0,
                elevation: float = 20.0) -> np.ndarray:
  """[num, S, S, 3]: interpolation of the style input between two models (section 5.4)."""
  styles = morph_styles(trained.num_styles, a, b, num)
  return trained.generate(styles, np.full(num, azimuth, np.float32),
                          np.full(num, elevation, np.float32)).composite


def transformation_sheet(trained, style: int, *, azimuth: float = 30.0,
                         elevation: float = 20.0, num_columns: int = 7) -> np.ndarray:
  """[rows, num_columns, S, S, 3]: Figure 7, one transformation per row, identity in the middle."""
  thetas = np.asarray(augment.transformation_sheet_thetas(num_columns), np.float32)
  rows, cols = thetas.shape[:2]
  styles = np.repeat(trained.one_hot([style]), rows * cols, axis=0)
  images = trained.generate(styles, np.full(rows * cols, azimuth, np.float32),
                            np.full(rows * cols, elevation, np.float32),
                            thetas.reshape(rows * cols, -1)).composite
  return images.reshape((rows, cols) + images.shape[1:])
