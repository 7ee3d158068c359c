"""Sections 5.2 and 5.3 on a trained run's data: given and missing views, nearest neighbours.

Section 5.2 trains on k views of each target chair and asks for the others. `target_views`
reads, from a run's `by_style` split, which views each target style was given and which are
missing (its test views). The paper's baseline, `nearest_neighbour_predict`, does without a
network: for each given view of a target chair it finds the closest source chair *at that
view* (Euclidean distance of RGB images, or of HOG descriptors) and predicts a missing view as
a linear combination of the neighbours' images at that view:

  * the missing azimuth a lies on the turntable between two given azimuths, g_prev before it
    and g_next after it (going round in the direction of increasing azimuth; with one given
    view both are that view);
  * the prediction is w_prev · N_prev(a) + w_next · N_next(a), where N_j is the neighbour found
    at g_j and N_j(a) its image at azimuth a; the weights are linear in angle,
    w_prev = d(a, g_next) / (d(a, g_prev) + d(a, g_next)), w_next = 1 - w_prev, with d the
    angular distance along the turntable. A view next to a given one thus copies that view's
    neighbour, a view half-way blends the two neighbours equally.

Images are the dataset's views on white in [0, 1] (the one MSE of docs/evaluation.md is
measured on them). HOG is scikit-image's `hog` on the grey image with 9 orientations, cells of
S/8 pixels (8 x 8 cells at any size S) and 2 x 2 blocks (L2-Hys), its defaults otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

FEATURES = ("rgb", "hog")


@dataclasses.dataclass(frozen=True)
class TargetViews:
  """One target style of a `by_style` run: its given (trained) and missing (test) views."""
  style: int                # network input index
  model: int                # model id in the run's data
  elevation: float          # the ring of the given views
  given_ids: np.ndarray     # example ids, sorted by azimuth
  given_azimuths: np.ndarray
  missing_ids: np.ndarray   # example ids, sorted by azimuth
  missing_azimuths: np.ndarray


def target_views(data) -> list[TargetViews]:
  """The target styles of a run's `by_style` split (`inference.RunData`), in style order."""
  meta = data.pipeline.metadata
  split = data.split
  if not len(split.target_styles):
    raise ValueError("this run's split has no target styles: section 5.2 needs "
                     "config.data.split='by_style'")
  out = []
  for style in np.sort(split.target_styles):
    given = split.train[split.train_styles == style]
    missing = split.test[split.test_styles == style]
    given = given[np.argsort(meta.azimuth[given], kind="stable")]
    missing = missing[np.argsort(meta.azimuth[missing], kind="stable")]
    out.append(TargetViews(
        int(style), int(meta.model[given[0]]), float(meta.elevation[given[0]]), given,
        meta.azimuth[given].astype(np.float64), missing,
        meta.azimuth[missing].astype(np.float64)))
  return out


def angular_weights(missing_azimuths: Sequence[float], given_azimuths: Sequence[float]
                    ) -> np.ndarray:
  """f64[M, K]: the module docstring's linear-in-angle weights of the K given views."""
  missing = np.asarray(missing_azimuths, np.float64) % 360.0
  given = np.asarray(given_azimuths, np.float64) % 360.0
  if not len(given):
    raise ValueError("no given views")
  weights = np.zeros((len(missing), len(given)))
  for i, a in enumerate(missing):
    ahead = (a - given) % 360.0      # how far a is past each given view
    prev = int(np.argmin(ahead))
    behind = (given - a) % 360.0     # how far each given view is past a
    nxt = int(np.argmin(behind))
    d_prev, d_next = ahead[prev], behind[nxt]
    if prev == nxt or d_prev + d_next == 0:
      weights[i, prev] = 1.0
    else:
      weights[i, prev] = d_next / (d_prev + d_next)
      weights[i, nxt] = d_prev / (d_prev + d_next)
  return weights


def features(images: np.ndarray, kind: str) -> np.ndarray:
  """f64[N, D] descriptors of images on white f32[N, S, S, 3]: raw RGB or scikit-image HOG."""
  images = np.asarray(images, np.float32)
  if kind == "rgb":
    return images.reshape(len(images), -1).astype(np.float64)
  if kind == "hog":
    from skimage import color, feature  # pylint: disable=g-import-not-at-top
    cell = max(1, images.shape[1] // 8)
    return np.stack([
        feature.hog(color.rgb2gray(im), orientations=9, pixels_per_cell=(cell, cell),
                    cells_per_block=(2, 2), block_norm="L2-Hys", feature_vector=True)
        for im in images]).astype(np.float64)
  raise ValueError(f"feature must be one of {FEATURES}, got {kind!r}")


def nearest_neighbour_predict(target_given: np.ndarray, source_given: np.ndarray,
                              source_missing: np.ndarray, given_azimuths, missing_azimuths,
                              kind: str = "rgb", source_given_features: np.ndarray | None = None
                              ) -> tuple[np.ndarray, np.ndarray]:
  """The section 5.2 baseline for one target chair.

  Args:
    target_given: f32[K, S, S, 3], the target's given views on white.
    source_given: f32[N, K, S, S, 3], every source chair at those K views.
    source_missing: f32[N, M, S, S, 3], every source chair at the M missing views.
    given_azimuths, missing_azimuths: degrees, [K] and [M].
    kind: 'rgb' or 'hog' (the similarity measure).
    source_given_features: optional f64[N, K, D], `features` of source_given computed once by
      a caller that predicts many targets.

  Returns:
    (predicted f32[M, S, S, 3], neighbour index into the N source chairs per given view [K]).
  """
  n, k = source_given.shape[:2]
  if target_given.shape[0] != k or source_missing.shape[0] != n:
    raise ValueError(f"shapes disagree: target {target_given.shape}, source given "
                     f"{source_given.shape}, source missing {source_missing.shape}")
  target_f = features(target_given, kind)                                   # [K, D]
  source_f = source_given_features
  if source_f is None:
    source_f = features(source_given.reshape((n * k,) + source_given.shape[2:]), kind)
    source_f = source_f.reshape(n, k, -1)                                   # [N, K, D]
  distances = np.sum(np.square(source_f - target_f[None]), axis=-1)         # [N, K]
  neighbours = np.argmin(distances, axis=0)                                 # [K]
  weights = angular_weights(missing_azimuths, given_azimuths)              # [M, K]
  # prediction[m] = sum_j weights[m, j] * source_missing[neighbours[j], m]
  chosen = source_missing[neighbours]                                       # [K, M, S, S, 3]
  predicted = np.einsum("mk,km...->m...", weights, chosen.astype(np.float64))
  return predicted.astype(np.float32), neighbours
