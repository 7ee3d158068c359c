"""The paper's train/test splits, as pure functions of per-example metadata.

Every builder stores one split, `train`, holding every view of every model; the experiments'
splits are made here, so one build serves all of them. A split is a pair of index arrays into
the metadata (the concatenation of all sources the pipeline reads). Everything is numpy and a
deterministic function of the metadata *content* and the seed: the order in which TFDS stored
the records does not matter, because every choice is made per model, over its views sorted by
(elevation, azimuth).

Splits (`make_split` dispatches on `config.split`):

* `heldout_views`: every model keeps all its views for training except `views_per_model`
  views drawn at random per model (seeded); those are the test set (sample grids, the
  held-out-view MSE).
* `all`: train on everything (the paper's main networks, Table 1); the test set is the same
  per-model draw as `heldout_views` but those views are *also* in training (a reconstruction
  set, not a generalisation set).
* `by_style` (section 5.2): a seeded `target_fraction` of the styles is the target set, the
  rest the source set. Every target style keeps k views for training, evenly spaced in azimuth
  on one elevation ring (see `evenly_spaced_views`); 'with transfer' the source styles keep
  all their views, 'no transfer' they keep the same k views. The test set is the other views
  *of that ring* of the target styles, the same in both settings: so the two settings differ
  only in the source styles' training views, what the paper varies, and the error measures
  azimuth interpolation alone (a target style's views at other elevations are neither trained
  on nor tested: without transfer no style has them, and testing them would mix elevation
  extrapolation into Figure 9). The target styles depend only on the seed and the fraction,
  not on k or transfer, so the runs of Figure 9 share their target set and test views.
* `by_elevation` (section 5.3): only the models of `classes`; each class named in
  `train_elevations` (e.g. chairs: 20, 30) trains only on those elevations and its other
  views are the test set; classes not named keep all their views. The test set may be empty
  (Aubry chairs hold only 20 and 30 and ShapeNet tables only 0..40: real data has no ground
  truth for the unseen elevations, and the figures are drawn without it).
* `by_class`: only the models of `classes` (e.g. chairs and tables read together); within
  them, views are held out as in `heldout_views`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from chairgen.datasets.common import CLASS_NAMES  # the datasets' `class` labels, in order

# The `class` ClassLabel of every chairgen builder, in label order.
SPLITS = ("heldout_views", "all", "by_style", "by_elevation", "by_class")

# Salts keep the random streams of different splits apart for one seed.
_SALT = {"heldout_views": 1, "by_style": 2}


@dataclasses.dataclass(frozen=True)
class Metadata:
  """Per-example metadata, one entry per record of the concatenated sources.

  Attributes:
    model: int64[N], model id, contiguous over all sources (0..M-1).
    azimuth: float32[N], degrees.
    elevation: float32[N], degrees.
    class_id: int64[N], index into `CLASS_NAMES`.
  """

  model: np.ndarray
  azimuth: np.ndarray
  elevation: np.ndarray
  class_id: np.ndarray

  def __post_init__(self):
    n = len(self.model)
    for name in ("azimuth", "elevation", "class_id"):
      if len(getattr(self, name)) != n:
        raise ValueError(f"Metadata.{name} has {len(getattr(self, name))} entries, model has {n}.")

  def __len__(self) -> int:
    return len(self.model)


@dataclasses.dataclass(frozen=True)
class Split:
  """Train and test example indices (sorted int64 arrays) and, for `by_style`, the target set."""

  train: np.ndarray
  test: np.ndarray
  target_styles: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))


def views_by_model(meta: Metadata) -> dict[int, np.ndarray]:
  """Maps each model id to its example indices sorted by (elevation, azimuth, index)."""
  order = np.lexsort((np.arange(len(meta)), meta.azimuth, meta.elevation, meta.model))
  models, starts = np.unique(meta.model[order], return_index=True)
  return {int(m): v for m, v in zip(models, np.split(order, starts[1:]))}


def _rng(seed: int, kind: str) -> np.random.Generator:
  return np.random.default_rng([int(seed), _SALT[kind]])


def _finish(train, test, target_styles=None) -> Split:
  train = np.sort(np.asarray(train, np.int64))
  test = np.sort(np.asarray(test, np.int64))
  if np.intersect1d(train, test).size:  # Would be a bug here, never a user error.
    raise AssertionError("train and test share examples")
  if target_styles is None:
    return Split(train, test)
  return Split(train, test, np.sort(np.asarray(target_styles, np.int64)))


def heldout_views(meta: Metadata, *, views_per_model: int, seed: int) -> Split:
  """Holds out `views_per_model` random views of every model (seeded, per model)."""
  rng = _rng(seed, "heldout_views")
  train, test = [], []
  for model, views in views_by_model(meta).items():
    if views_per_model >= len(views):
      raise ValueError(
          f"Model {model} has {len(views)} views; holding out {views_per_model} would leave "
          "none to train on. Lower heldout_views_per_model.")
    held = rng.permutation(len(views))[:views_per_model]
    is_held = np.zeros(len(views), bool)
    is_held[held] = True
    test.append(views[is_held])
    train.append(views[~is_held])
  return _finish(np.concatenate(train), np.concatenate(test))


def all_views(meta: Metadata, *, views_per_model: int, seed: int) -> Split:
  """Trains on every example; tests on the `heldout_views` draw, which is also trained on."""
  test = heldout_views(meta, views_per_model=views_per_model, seed=seed).test
  return Split(np.arange(len(meta), dtype=np.int64), test)


def default_elevation(elevations: np.ndarray) -> float:
  """The lower median of a model's distinct elevations (Aubry: 20, R2N2 0..40: 20)."""
  distinct = np.unique(elevations)
  return float(distinct[(len(distinct) - 1) // 2])


def evenly_spaced_views(meta: Metadata, views: np.ndarray, k: int,
                        elevation: float | None = None) -> np.ndarray:
  """Picks k views of one model: evenly spaced azimuths at one elevation.

  Of the model's views at `elevation` (default: `default_elevation`), sorted by azimuth, the
  ones at positions floor(i * n / k), i = 0..k-1, are kept: the first is the smallest azimuth
  (0 = the front when the turntable has it), the rest split the turntable into k near-equal
  arcs. No randomness: every target style gets the same azimuths.

  Args:
    meta: the metadata.
    views: int64[V], example indices of one model.
    k: how many views to keep.
    elevation: degrees, or None for the model's default elevation.

  Returns:
    int64[k], example indices.
  """
  el = meta.elevation[views]
  target = default_elevation(el) if elevation is None else float(elevation)
  ring = views[np.isclose(el, target)]
  if len(ring) < k:
    raise ValueError(
        f"Model {int(meta.model[views[0]])} has {len(ring)} views at elevation {target:g} "
        f"(elevations present: {sorted(set(np.round(el, 3).tolist()))}); cannot keep {k}. "
        "Lower views_per_target_style or set style_split_elevation to a fuller ring.")
  ring = ring[np.argsort(meta.azimuth[ring], kind="stable")]
  return ring[(np.arange(k) * len(ring)) // k]


def by_style(meta: Metadata, *, target_fraction: float, views_per_target_style: int,
             transfer: bool, seed: int, elevation: float | None = None) -> Split:
  """Section 5.2: source styles (all views, or k without transfer) and target styles (k views).

  Returns a Split whose test set is every view of the target styles on the ring of the k kept
  views that is not kept (the same for both values of `transfer`), and whose `target_styles`
  lists the target model ids.
  """
  if not 0.0 < target_fraction < 1.0:
    raise ValueError(f"target_fraction must be in (0, 1), got {target_fraction}.")
  if views_per_target_style < 1:
    raise ValueError(f"views_per_target_style must be >= 1, got {views_per_target_style}.")
  per_model = views_by_model(meta)
  models = np.array(sorted(per_model), np.int64)
  n_target = int(round(target_fraction * len(models)))
  if not 1 <= n_target < len(models):
    raise ValueError(
        f"target_fraction={target_fraction} of {len(models)} styles gives {n_target} target "
        "styles; need at least one target and one source style. Use more models.")
  target = np.sort(_rng(seed, "by_style").choice(models, n_target, replace=False))
  is_target = set(target.tolist())
  train, test = [], []
  for model, views in per_model.items():
    kept = evenly_spaced_views(meta, views, views_per_target_style, elevation)
    if model in is_target:
      ring = views[np.isclose(meta.elevation[views], meta.elevation[kept[0]])]
      test.append(np.setdiff1d(ring, kept))
    train.append(views if model not in is_target and transfer else kept)
  test_ids = np.concatenate(test)
  if not test_ids.size:
    raise ValueError("Target styles have no views left for testing: lower views_per_target_style.")
  return _finish(np.concatenate(train), test_ids, target)


def class_ids(classes: Sequence[str]) -> np.ndarray:
  """Class names -> ids of `CLASS_NAMES`, with an error naming the valid names."""
  unknown = [c for c in classes if c not in CLASS_NAMES]
  if unknown:
    raise ValueError(f"Unknown classes {unknown}; valid: {CLASS_NAMES}.")
  return np.array([CLASS_NAMES.index(c) for c in classes], np.int64)


def by_elevation(meta: Metadata, *, train_elevations: Mapping[str, Sequence[float]],
                 classes: Sequence[str] | None = None) -> Split:
  """Section 5.3: each class named in `train_elevations` trains only on its listed elevations.

  Only models of `classes` are used (None: every class present). A named class's views at
  other elevations are the test set; classes not named keep all their views. E.g. chairs
  only with {'chair': (20, 30)} (Figure 10's baseline), chairs and tables with
  {'chair': (20, 30), 'table': (0, 10, 20, 30, 40)} (Figures 10 and 11 from one network). The
  test set is empty when the data has no views at other elevations (real data): the nets still
  train, and only ground-truth-free figures can be drawn for the unseen elevations.
  """
  if not train_elevations:
    raise ValueError("train_elevations names no class: e.g. {'chair': (20, 30)}.")
  used = np.ones(len(meta), bool)
  if classes is not None:
    used = np.isin(meta.class_id, class_ids(classes))
    missing = [c for c, i in zip(classes, class_ids(classes)) if not np.any(meta.class_id == i)]
    if missing:
      raise ValueError(f"No examples of classes {missing}: add a dataset holding them to "
                       "`name`, or drop them from `classes`.")
  test = np.zeros(len(meta), bool)
  present = False
  for name, elevations in train_elevations.items():
    restricted = used & (meta.class_id == class_ids([name])[0])
    if not restricted.any():
      continue  # E.g. tables' limits while reading chairs alone (the section 5.3 baseline).
    present = True
    allowed = np.isclose(meta.elevation[:, None], np.asarray(elevations, np.float32)[None]).any(1)
    if not (restricted & allowed).any():
      raise ValueError(
          f"No {name} view is at train_elevations[{name!r}] = {list(elevations)}; its "
          f"elevations are {sorted(set(meta.elevation[restricted].tolist()))}.")
    test |= restricted & ~allowed
  if not present:
    raise ValueError(f"None of the classes {list(train_elevations)} of train_elevations is in "
                     "the data: name the classes you read.")
  return _finish(np.flatnonzero(used & ~test), np.flatnonzero(test))


def by_class(meta: Metadata, *, classes: Sequence[str], views_per_model: int, seed: int) -> Split:
  """Only the models of `classes` (e.g. chairs + tables), with `heldout_views` inside them."""
  ids = class_ids(classes)
  keep = np.flatnonzero(np.isin(meta.class_id, ids))
  missing = [c for c, i in zip(classes, ids) if not np.any(meta.class_id == i)]
  if missing:
    raise ValueError(f"No examples of classes {missing}: add a dataset holding them to `name`.")
  sub = Metadata(meta.model[keep], meta.azimuth[keep], meta.elevation[keep], meta.class_id[keep])
  inner = heldout_views(sub, views_per_model=views_per_model, seed=seed)
  return _finish(keep[inner.train], keep[inner.test])


def first_models(split: Split, meta: Metadata, num_models: int) -> Split:
  """Restricts a split to the models with the `num_models` smallest ids (Table 2's sweep)."""
  models = np.unique(meta.model)
  if not 1 <= num_models <= len(models):
    raise ValueError(f"num_models={num_models}, but the data has {len(models)} models: choose "
                     f"1..{len(models)}, or None for all.")
  keep = models[:num_models]
  return Split(split.train[np.isin(meta.model[split.train], keep)],
               split.test[np.isin(meta.model[split.test], keep)],
               split.target_styles[np.isin(split.target_styles, keep)])


def make_split(meta: Metadata, config, seed: int) -> Split:
  """`_make_split` for `config.split`, then `first_models` when `config.num_models` is set."""
  split = _make_split(meta, config, seed)
  num_models = config.get("num_models")
  return split if num_models is None else first_models(split, meta, int(num_models))


def _make_split(meta: Metadata, config, seed: int) -> Split:
  """Dispatches on `config.split` (fields as in `input_pipeline.default_config()`)."""
  kind = config.split
  if kind == "heldout_views":
    return heldout_views(meta, views_per_model=config.heldout_views_per_model, seed=seed)
  if kind == "all":
    return all_views(meta, views_per_model=config.heldout_views_per_model, seed=seed)
  if kind == "by_style":
    return by_style(meta, target_fraction=config.target_fraction,
                    views_per_target_style=config.views_per_target_style,
                    transfer=config.transfer, seed=seed,
                    elevation=config.style_split_elevation)
  if kind == "by_elevation":
    classes = config.get("elevation_classes")
    return by_elevation(meta, train_elevations=dict(config.train_elevations),
                        classes=None if classes is None else tuple(classes))
  if kind == "by_class":
    return by_class(meta, classes=config.classes,
                    views_per_model=config.heldout_views_per_model, seed=seed)
  raise ValueError(f"Unknown split {kind!r}; choose one of {SPLITS}.")


def contiguous_styles(model: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, int]:
  """Style ids 0..K-1 for the K models that have training views, in model-id order.

  Returns:
    (lookup int32[M], K): lookup[model_id] is the style, -1 for models without training views.
  """
  used = np.unique(model[train])
  lookup = np.full(int(model.max()) + 1 if len(model) else 0, -1, np.int32)
  lookup[used] = np.arange(len(used), dtype=np.int32)
  return lookup, len(used)
