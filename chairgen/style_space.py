"""The style space of sections 5.4-5.6: morphs, mixtures, random styles, feature arithmetic,
and the measurements the paper made by eye (retrieval, diversity, novelty, sharpness).

Everything works on a `chairgen.inference.Trained` and is usable from a notebook:

```python
styles = style_space.random_mixture_styles(jax.random.key(0), 256, trained.num_styles, m=3)
out = trained.generate(styles, az, el)
bank = style_space.TrainingViews(trained.data)
neighbours = bank.nearest(out.composite, az, el)          # Figure 17's bottom rows
style_space.diversity(out.composite), neighbours.distance.mean(), style_space.sharpness(...)
result = style_space.arithmetic(trained, base_styles, difference, "style_fc2", az, el)
```

Distances are RMS distances of images on white in [0, 1]: the Euclidean distance the paper
uses, divided by the square root of the number of values, so that they read the same at any
image size. Samplers take an explicit PRNG key and are deterministic per key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from chairgen import imaging
from chairgen import sampling
from chairgen.evaluators import _common

# Where feature arithmetic (and feature replacement) can happen: the style input vector, or
# the output of the style stream's FC1 or FC2 (section 5.5).
LAYERS = ("input", "style_fc1", "style_fc2")


# ----------------------------------------------------------------------------- samplers

def softmax_gaussian_styles(key: jax.Array, num: int, num_styles: int, sigma: float
                            ) -> np.ndarray:
  """Section 5.6 (1): softmax of N(0, σ²) noise of the style vector's size, f32[num, M]."""
  if sigma <= 0:
    raise ValueError(f"sigma must be > 0, got {sigma}")
  logits = float(sigma) * np.asarray(jax.random.normal(key, (num, num_styles)), np.float64)
  logits -= logits.max(axis=1, keepdims=True)
  weights = np.exp(logits)
  return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def random_mixture_styles(key: jax.Array, num: int, num_styles: int, m: int) -> np.ndarray:
  """Section 5.6 (2): M distinct random styles, coefficients ~ U[0, 1] normalised to sum 1."""
  if not 1 <= m <= num_styles:
    raise ValueError(f"m must lie in [1, {num_styles}] (the number of styles), got {m}")
  pick_key, weight_key = jax.random.split(key)
  # The m smallest of i.i.d. uniform scores: m distinct styles, every subset equally likely.
  scores = np.asarray(jax.random.uniform(pick_key, (num, num_styles)))
  order = np.argsort(scores, axis=1, kind="stable")[:, :m]
  coefficients = np.asarray(jax.random.uniform(weight_key, (num, m)), np.float32)
  return np.stack([sampling.mix_styles(num_styles, i, w) for i, w in zip(order, coefficients)])


def gaussian_features(key: jax.Array, num: int, shape: Sequence[int], std: float
                      ) -> np.ndarray:
  """N(0, std²) noise shaped [num, *shape] (section 5.6 (e)-(h): noise in place of FC2)."""
  return float(std) * np.asarray(jax.random.normal(key, (num, *shape)), np.float32)


def training_styles(trained, cls: str | None = None) -> np.ndarray:
  """The styles a run trained on, sorted; only those of class `cls` ('chair', ...) if given."""
  styles = np.unique(trained.data.split.train_styles)
  if cls is None:
    return styles
  keep = styles[trained.data.style_classes()[styles] == cls]
  if not len(keep):
    raise ValueError(f"this run has no training styles of class {cls!r}; it has "
                     f"{sorted(set(trained.data.style_classes()))}")
  return keep


def choose(key: jax.Array, population: Sequence[int], num: int) -> np.ndarray:
  """`num` distinct members of `population`, chosen by `key` (pairs and triples of styles)."""
  population = np.asarray(population)
  if num > len(population):
    raise ValueError(f"cannot choose {num} distinct of {len(population)}")
  return population[np.asarray(jax.random.permutation(key, len(population)))[:num]]


# ----------------------------------------------------------------------------- triangles

def triangle_layout(n: int) -> tuple[np.ndarray, np.ndarray]:
  """Figure 14's table: n rows x (n + 1) columns holding two triangles of side n.

  Returns (weights f32[n, n+1, 3], which int[n, n+1]): the barycentric weights of each cell
  over its triangle's three corners and which triangle it belongs to (0 upper right, 1 lower
  left). Upper triangle: corners (0, 1) = first, (0, n) = second, (n-1, n) = third; lower:
  (n-1, 0) = first, (0, 0) = second, (n-1, n-1) = third.
  """
  if n < 2:
    raise ValueError(f"a triangle needs n >= 2 cells per side, got {n}")
  weights = np.zeros((n, n + 1, 3), np.float32)
  which = np.zeros((n, n + 1), np.int32)
  for i in range(n):
    for j in range(n + 1):
      if j > i:   # upper right: p along the top row, q down the last column
        p, q, which[i, j] = j - 1 - i, i, 0
      else:       # lower left: p up the first column, q along the bottom row
        p, q, which[i, j] = n - 1 - i, j, 1
      weights[i, j] = (1.0 - (p + q) / (n - 1), p / (n - 1), q / (n - 1))
  return weights, which


def triangle_styles(num_styles: int, upper: Sequence[int], lower: Sequence[int], n: int
                    ) -> np.ndarray:
  """Style vectors of Figure 14's table, f32[n, n + 1, M] (see `triangle_layout`)."""
  weights, which = triangle_layout(n)
  triples = (tuple(upper), tuple(lower))
  if any(len(t) != 3 or len(set(t)) != 3 for t in triples):
    raise ValueError(f"upper and lower must be triples of distinct styles, got {triples}")
  out = np.zeros((n, n + 1, num_styles), np.float32)
  for i in range(n):
    for j in range(n + 1):
      w = weights[i, j]
      keep = w > 0
      out[i, j] = sampling.mix_styles(num_styles, np.asarray(triples[which[i, j]])[keep], w[keep])
  return out


# ----------------------------------------------------------------------------- features

def style_features(trained, styles_NxM: np.ndarray, layer: str) -> np.ndarray:
  """The style stream's features of style vectors at `layer` (one of LAYERS), f32[N, D]."""
  check_layer(layer)
  styles = np.asarray(styles_NxM, np.float32)
  if layer == "input":
    return styles
  out = trained.generate(styles, np.zeros(len(styles)), np.zeros(len(styles)), capture=(layer,))
  return out.activations[layer].reshape(len(styles), -1)


def generate_from_features(trained, features_NxD: np.ndarray, layer: str, azimuth_N,
                           elevation_N, theta_NxT=None, *, rng=None):
  """Images from features at `layer` in place of the style stream's own (FC1 or FC2), or
  from style vectors when layer is 'input'. Returns `inference.Generated`."""
  check_layer(layer)
  features = np.asarray(features_NxD, np.float32)
  n = len(features)
  if layer == "input":
    return trained.generate(features, azimuth_N, elevation_N, theta_NxT, rng=rng)
  return trained.generate(np.zeros((n, trained.num_styles), np.float32), azimuth_N, elevation_N,
                          theta_NxT, rng=rng, replace={layer: features})


def check_layer(layer: str) -> None:
  if layer not in LAYERS:
    raise ValueError(f"layer must be one of {LAYERS} (the style input or the style stream's "
                     f"FC1 / FC2), got {layer!r}")


def arithmetic(trained, base_styles: Sequence[int], difference_D: np.ndarray, layer: str,
               azimuth_N, elevation_N, *, rng=None):
  """Section 5.5: features(base) + difference at `layer`, drawn at the given views.

  `difference_D` has the layer's feature size (for 'input', the style vector's); a zero
  difference gives the base chairs unchanged. Returns `inference.Generated`.
  """
  base = style_features(trained, trained.one_hot(np.asarray(base_styles)), layer)
  difference = np.asarray(difference_D, np.float32)
  if difference.shape != base.shape[1:]:
    raise ValueError(f"difference has shape {difference.shape}; layer {layer!r} has "
                     f"{base.shape[1]} features")
  return generate_from_features(trained, base + difference, layer, azimuth_N, elevation_N,
                                rng=rng)


def attribute_difference(trained, from_styles: Sequence[int], to_styles: Sequence[int],
                         layer: str) -> np.ndarray:
  """mean features(to_styles) - mean features(from_styles) at `layer`: the direction that
  moves one attribute (with one style on each side: the paper's pair difference)."""
  if not len(from_styles) or not len(to_styles):
    raise ValueError("attribute_difference needs at least one style on each side")
  f_from = style_features(trained, trained.one_hot(np.asarray(from_styles)), layer)
  f_to = style_features(trained, trained.one_hot(np.asarray(to_styles)), layer)
  return f_to.mean(axis=0) - f_from.mean(axis=0)


# ----------------------------------------------------------------------------- measures

def _flat(images) -> np.ndarray:
  images = imaging.to_float(images)
  return images.reshape(len(images), -1).astype(np.float64)


def rms_distances(a_NxSxSx3, b_KxSxSx3) -> np.ndarray:
  """RMS distance between every image of a and every image of b, f64[N, K]."""
  a, b = _flat(a_NxSxSx3), _flat(b_KxSxSx3)
  squared = (np.square(a).sum(1)[:, None] + np.square(b).sum(1)[None, :] - 2.0 * a @ b.T)
  return np.sqrt(np.maximum(squared, 0.0) / a.shape[1])


def diversity(images_NxSxSx3, *, per_image: bool = False):
  """Mean pairwise RMS distance between the images (0 when they are all alike); with
  per_image, also each image's mean distance to the others, f64[N]."""
  n = len(images_NxSxSx3)
  if n < 2:
    raise ValueError("diversity needs at least 2 images")
  d = rms_distances(images_NxSxSx3, images_NxSxSx3)
  mean = float(d[np.triu_indices(n, 1)].mean())
  return (mean, d.sum(axis=1) / (n - 1)) if per_image else mean


def sharpness(images_NxSxSx3) -> np.ndarray:
  """Per image: the variance of the Laplacian of the grey image (higher: sharper), f64[N]."""
  from skimage import color, filters  # pylint: disable=g-import-not-at-top
  images = imaging.to_float(images_NxSxSx3)
  return np.asarray([filters.laplace(color.rgb2gray(im)).var() for im in images], np.float64)


@dataclasses.dataclass(frozen=True)
class Neighbours:
  ids: np.ndarray        # int64[N] example ids of the nearest training views
  styles: np.ndarray     # int32[N] their styles
  distance: np.ndarray   # f64[N] RMS distance to them
  images: np.ndarray     # f32[N, S, S, 3] the neighbours, on white


class TrainingViews:
  """Nearest-neighbour retrieval over a run's training images, one view at a time.

  A generated chair is compared with the training images at its own view (the paper shows
  the closest chair from the dataset, which is only meaningful at the same view). Images
  are loaded per view on first use, so memory stays one view's worth of training images.
  """

  def __init__(self, data):
    self.data = data
    meta = data.pipeline.metadata
    self._ids = np.asarray(data.split.train, np.int64)
    self._az = np.asarray(meta.azimuth[self._ids], np.float64)
    self._el = np.asarray(meta.elevation[self._ids], np.float64)
    self._styles = np.asarray(data.split.train_styles, np.int32)
    self._style_of = dict(zip(self._ids.tolist(), self._styles.tolist()))
    self._cache: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}

  def views(self) -> np.ndarray:
    """[(azimuth, elevation)] of every view that has training images."""
    return np.unique(np.stack([self._az, self._el], 1), axis=0)

  def nearest_view(self, azimuth: float, elevation: float) -> tuple[float, float]:
    """The stored training view closest to (azimuth, elevation), in degrees."""
    views = self.views()
    d_az = np.abs((views[:, 0] - azimuth + 180.0) % 360.0 - 180.0)
    i = int(np.argmin(d_az ** 2 + (views[:, 1] - elevation) ** 2))
    return float(views[i, 0]), float(views[i, 1])

  def at_view(self, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    """(example ids, images on white f32[K, S, S, 3]) of the training images at one view."""
    key = (round(float(azimuth) % 360.0, 3), round(float(elevation), 3))
    if key not in self._cache:
      keep = np.flatnonzero((np.round(self._az % 360.0, 3) == key[0])
                            & (np.round(self._el, 3) == key[1]))
      if not len(keep):
        raise KeyError(f"no training image at azimuth {key[0]:g}, elevation {key[1]:g}; "
                       f"snap views with nearest_view() first")
      batch = self.data.examples(self._ids[keep])
      self._cache[key] = (self._ids[keep], _common.ground_truth_on_white(batch["image"],
                                                                         batch["mask"]))
    return self._cache[key]

  def nearest(self, images_NxSxSx3, azimuth_N, elevation_N) -> Neighbours:
    """The nearest training image (RMS distance) at each image's own view."""
    images = imaging.to_float(images_NxSxSx3)
    n = len(images)
    az = np.broadcast_to(np.asarray(azimuth_N, np.float64), (n,))
    el = np.broadcast_to(np.asarray(elevation_N, np.float64), (n,))
    ids = np.zeros(n, np.int64)
    dist = np.zeros(n, np.float64)
    found = np.zeros_like(images)
    for view in np.unique(np.stack([az, el], 1), axis=0):
      rows = np.flatnonzero((az == view[0]) & (el == view[1]))
      bank_ids, bank = self.at_view(*view)
      d = rms_distances(images[rows], bank)
      best = np.argmin(d, axis=1)
      ids[rows], dist[rows], found[rows] = bank_ids[best], d[np.arange(len(rows)), best], bank[best]
    return Neighbours(ids=ids, styles=self.styles(ids), distance=dist, images=found)

  def styles(self, ids) -> np.ndarray:
    """The styles of training example ids, int32."""
    return np.asarray([self._style_of[int(i)] for i in np.asarray(ids).ravel()], np.int32)


# ----------------------------------------------------------------------------- procedural truth

@dataclasses.dataclass(frozen=True)
class ProceduralModel:
  """Which procedural object a style of a run is (for counterfactual ground truth)."""
  family: str
  index: int
  seed: int
  factors: Mapping[str, Any]
  keypoint_names: tuple[str, ...] = ()   # in the order of the dataset's keypoints


def procedural_models(trained) -> list[ProceduralModel]:
  """The procedural object behind every style of a run trained on `procedural_turntables`."""
  from chairgen import procedural  # pylint: disable=g-import-not-at-top
  from chairgen.datasets.procedural_turntables import procedural_turntables_dataset_builder as b
  name = str(trained.config.data.name)
  dataset, _, config_name = name.partition("/")
  if dataset != "procedural_turntables" or "+" in name:
    raise ValueError(f"counterfactual ground truth needs a run trained on one procedural "
                     f"dataset (procedural_turntables/<config>), not {name!r}: real data has no "
                     "factors to change")
  configs = {c.name: c for c in b.Builder.BUILDER_CONFIGS}
  config = configs[config_name]
  out = []
  for style_name in trained.style_names or []:
    for family in config.families:
      try:
        index = procedural.find_object(style_name, family, config.seed, config.num_models)
      except KeyError:
        continue
      obj = procedural.make_object(family, index, config.seed)
      out.append(ProceduralModel(family, index, config.seed, obj.factors,
                                 tuple(obj.keypoint_names)))
      break
    else:
      raise KeyError(f"style {style_name} is not a model of {name}")
  if len(out) != trained.num_styles:
    raise ValueError(f"the run lists {len(out)} style names for {trained.num_styles} styles: "
                     "its run_info.json predates style names; retrain")
  return out


def render_procedural(model: ProceduralModel, views: Sequence[tuple[float, float]],
                      image_size: int, overrides: Mapping[str, Any] | None = None
                      ) -> np.ndarray:
  """The procedural model (with `overrides` applied) at [(azimuth, elevation)] views, on white
  as the dataset stores it, f32[V, S, S, 3]."""
  from chairgen import procedural  # pylint: disable=g-import-not-at-top
  obj = procedural.make_object(model.family, model.index, model.seed, overrides=overrides)
  renderer = procedural.Renderer(image_size=image_size)
  try:
    rendered = renderer.render_views(obj, [(float(a), float(e)) for a, e in views])
  finally:
    renderer.release()
  return np.stack([_common.ground_truth_on_white(v.rgb, v.mask[..., None]) for v in rendered])


# ----------------------------------------------------------------------------- morph quality

def step_differences(frames_FxHxWx3: np.ndarray) -> np.ndarray:
  """d_i: mean squared difference of consecutive frames of a morph, f64[F - 1]."""
  frames = imaging.to_float(frames_FxHxWx3).astype(np.float64)
  return np.mean(np.square(np.diff(frames, axis=0)).reshape(len(frames) - 1, -1), axis=1)


def morph_quality(frames_FxSxSx3, neighbour_distance_F: np.ndarray) -> dict[str, float]:
  """The measured quality of one morph (lower is better); docs/evaluation.md, section 5.4.

  jumpiness = (max d / mean d - 1) / (F - 2), d_i the MSE between consecutive frames: 0 when
    the change is spread evenly over the steps, 1 when it all happens in one step.
  stray = mean over the intermediate frames of their RMS distance to the nearest training
    image, divided by the RMS distance between the two end frames: how far the invented
    objects lie from every real one, relative to how different the two ends are.
  score = jumpiness + stray.
  """
  frames = imaging.to_float(frames_FxSxSx3).astype(np.float64)
  f = len(frames)
  if f < 3:
    raise ValueError(f"a morph needs >= 3 frames, got {f}")
  d = step_differences(frames)
  jumpiness = (d.max() / max(d.mean(), 1e-12) - 1.0) / (f - 2)
  ends = float(rms_distances(frames[:1], frames[-1:])[0, 0])
  stray = float(np.mean(neighbour_distance_F[1:-1])) / max(ends, 1e-12)
  return {"jumpiness": float(jumpiness), "stray": stray, "score": float(jumpiness + stray),
          "end_distance": ends}


def crossfade(first_SxSx3, last_SxSx3, num: int) -> np.ndarray:
  """The pixel cross-fade (1 - t) first + t last over `num` frames: a morph's baseline."""
  t = np.linspace(0.0, 1.0, num, dtype=np.float32)[:, None, None, None]
  return (1.0 - t) * imaging.to_float(first_SxSx3)[None] + t * imaging.to_float(last_SxSx3)[None]
