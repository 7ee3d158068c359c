"""Keypoint pairs for section 5.7's benchmark: two objects of a trained run at one shared view,
the points of the first and where they truly are in the second.

Two sources, one `Pair` type:

* `procedural_pairs(trained, ...)`: pairs of training chairs of a run on procedural data, with
  exact ground truth: the dataset's keypoints (docs/data.md) visible in both images. Each pair
  is 'simple' or 'difficult' by `factor_distance`, the number of the chairs' categorical style
  factors (STRUCTURE_FACTORS) that differ: at most `simple_max` is simple, at least
  `difficult_min` is difficult, the rest is not used. The chairs are first split into a
  validation and a test group, so no chair of a test pair was ever seen while tuning.
* `read_pairs(path, trained)`: a pair file (FORMAT below) for real data, e.g. Aubry's chairs
  with annotations the user brings, or KeypointNet's ShapeNet chairs projected into renders.

Pair file (JSON), points in pixels (x right, y down, the top-left pixel covers [0, 1)²) of
images of `image_size` px; they are rescaled to the run's image size:

    {"format": "chairgen-pairs-1", "image_size": 128,
     "pairs": [{"a": "<model name>", "b": "<model name>", "view": [azimuth, elevation],
                "points_a": [[x, y], ...], "points_b": [[x, y], ...],
                "difficulty": "simple" | "difficult", "split": "validation" | "test",
                "names": ["leg_front_left", ...]}]}       # names optional

`to_record` / `write_pairs` write the same format, so the procedural benchmark can be read
back, shared, or edited by hand.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence

import jax
import numpy as np

FORMAT = "chairgen-pairs-1"
SIMPLE, DIFFICULT = "simple", "difficult"
VALIDATION, TEST = "validation", "test"
# The chairs' categorical style factors (chairgen/procedural/chairs.py): shape of the seat,
# the back and its top, the legs and their profile, armrests, stretchers and the material
# scheme (which sets the colours); continuous sizes and the colours themselves are left out.
STRUCTURE_FACTORS = ("seat_shape", "back_style", "back_top", "leg_style", "leg_profile",
                     "armrests", "stretchers", "material")


@dataclasses.dataclass(frozen=True)
class Pair:
  """Two styles of a run at one view, with K corresponding points (at the run's image size)."""
  style_a: int
  style_b: int
  azimuth: float
  elevation: float
  points_a: np.ndarray      # f32[K, 2]
  points_b: np.ndarray      # f32[K, 2], the ground truth
  difficulty: str           # SIMPLE or DIFFICULT
  split: str                # VALIDATION or TEST
  names: tuple[str, ...] = ()
  distance: float | None = None   # factor_distance where known

  @property
  def num_points(self) -> int:
    return len(self.points_a)


def factor_distance(factors_a, factors_b, names: Sequence[str] = STRUCTURE_FACTORS) -> int:
  """How many of the named style factors differ between two objects."""
  missing = [n for n in names if n not in factors_a or n not in factors_b]
  if missing:
    raise KeyError(f"factor(s) {missing} missing: factor_distance compares chairs' factors "
                   f"{list(names)}")
  return int(sum(factors_a[n] != factors_b[n] for n in names))


def difficulty_of(distance: float, simple_max: float, difficult_min: float) -> str | None:
  if simple_max >= difficult_min:
    raise ValueError(f"simple_max ({simple_max}) must be below difficult_min ({difficult_min})")
  if distance <= simple_max:
    return SIMPLE
  if distance >= difficult_min:
    return DIFFICULT
  return None


def _common_visible(names_a, xy_a, vis_a, names_b, xy_b, vis_b):
  """The keypoints both objects have (by name) and both images show."""
  index_b = {n: i for i, n in enumerate(names_b)}
  keep = [(i, index_b[n]) for i, n in enumerate(names_a)
          if n in index_b and vis_a[i] and vis_b[index_b[n]]]
  if not keep:
    return (), np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
  ia, ib = map(list, zip(*keep))
  return tuple(names_a[i] for i in ia), xy_a[ia], xy_b[ib]


def _training_views(trained) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(example ids, styles, [azimuth, elevation] rounded to 3 decimals) of the training split,
  from the metadata alone (no image is read)."""
  meta = trained.data.pipeline.metadata
  ids = np.asarray(trained.data.split.train, np.int64)
  views = np.stack([meta.azimuth[ids] % 360.0, meta.elevation[ids]], 1).round(3)
  return ids, np.asarray(trained.data.split.train_styles), views


def shared_view(trained, azimuth: float, elevation: float, family: str = "chairs", *,
                models=None) -> tuple[float, float]:
  """The stored view nearest (azimuth, elevation) among those where the most models of
  `family` have a training image (all of them unless views are held out everywhere): the
  benchmark's one view, so that no chair is lost to a held-out view. `models`: the run's
  `style_space.procedural_models`, when the caller has them."""
  from chairgen import style_space  # pylint: disable=g-import-not-at-top
  models = models or style_space.procedural_models(trained)
  _, styles, views = _training_views(trained)
  keep = np.asarray([models[s].family == family for s in styles], bool)
  unique, inverse = np.unique(views[keep], axis=0, return_inverse=True)
  counts = np.asarray([len(set(styles[keep][inverse.ravel() == i])) for i in range(len(unique))])
  best = unique[counts == counts.max()]
  d_az = np.abs((best[:, 0] - azimuth + 180.0) % 360.0 - 180.0)
  i = int(np.argmin(d_az ** 2 + (best[:, 1] - elevation) ** 2))
  return float(best[i, 0]), float(best[i, 1])


def procedural_pairs(trained, azimuth: float, elevation: float, key: jax.Array, *,
                     num_validation: int, num_test: int, simple_fraction: float = 1 / 3,
                     simple_max: int = 3, difficult_min: int = 6,
                     validation_fraction: float = 0.4, family: str = "chairs",
                     min_points: int = 3, models=None) -> list[Pair]:
  """Validation and test pairs of training objects of `family` at a stored view (see the module
  docstring). The view must be a training view of every chair used: chairs whose image there
  is held out are left out. Each split holds round(n · simple_fraction) simple pairs and the
  rest difficult, drawn with the key, or all there are when fewer exist (the caller reports the
  counts); a split left without any pair is an error that says how many chairs it had.
  `models`: the run's `style_space.procedural_models`, when the caller has them."""
  from chairgen import style_space  # pylint: disable=g-import-not-at-top
  models = models or style_space.procedural_models(trained)
  all_ids, all_styles, views = _training_views(trained)
  at = np.flatnonzero((views[:, 0] == round(float(azimuth) % 360.0, 3))
                      & (views[:, 1] == round(float(elevation), 3)))
  id_of = {int(s): int(i) for s, i in zip(all_styles[at], all_ids[at])}
  styles = sorted(s for s in id_of if models[s].family == family)
  if len(styles) < 4:
    raise ValueError(f"only {len(styles)} {family} of this run have a training image at "
                     f"azimuth {azimuth:g}, elevation {elevation:g}; need at least 4")
  keypoints = dict(zip(styles, trained.data.keypoints([id_of[s] for s in styles])))
  k_split, k_val, k_test = jax.random.split(key, 3)
  order = style_space.choose(k_split, styles, len(styles))
  n_val = max(2, int(round(validation_fraction * len(styles))))
  groups = {VALIDATION: sorted(order[:n_val].tolist()), TEST: sorted(order[n_val:].tolist())}
  wanted = {VALIDATION: (num_validation, k_val), TEST: (num_test, k_test)}
  out = []
  for split, group in groups.items():
    num, k = wanted[split]
    if num <= 0:
      continue
    by_kind: dict[str, list[Pair]] = {SIMPLE: [], DIFFICULT: []}
    for a, b in itertools.combinations(group, 2):
      d = factor_distance(models[a].factors, models[b].factors)
      kind = difficulty_of(d, simple_max, difficult_min)
      if kind is None:
        continue
      names, pa, pb = _common_visible(models[a].keypoint_names, *keypoints[a],
                                      models[b].keypoint_names, *keypoints[b])
      if len(names) < min_points:
        continue
      by_kind[kind].append(Pair(a, b, float(azimuth), float(elevation), pa, pb, kind, split,
                                names, float(d)))
    num_simple = int(round(num * simple_fraction))
    for kind, n, kk in ((SIMPLE, num_simple, jax.random.fold_in(k, 0)),
                        (DIFFICULT, num - num_simple, jax.random.fold_in(k, 1))):
      pool = by_kind[kind]
      chosen = style_space.choose(kk, np.arange(len(pool)), min(n, len(pool)))
      flips = np.asarray(jax.random.bernoulli(jax.random.fold_in(kk, 1), 0.5, (len(chosen),)))
      for i, flip in zip(sorted(chosen.tolist()), flips):
        out.append(_flipped(pool[i]) if flip else pool[i])
    if not any(p.split == split for p in out):
      raise ValueError(
          f"no {split} pair among {len(group)} {family} (simple: factor distance <= "
          f"{simple_max}, difficult: >= {difficult_min} of {len(STRUCTURE_FACTORS)} factors, "
          f">= {min_points} keypoints visible in both): use a run with more models, or set "
          "simple_max / difficult_min before looking at any result")
  return out


def _flipped(p: Pair) -> Pair:
  """The same pair read from b to a (which object is first is drawn, not sorted)."""
  return dataclasses.replace(p, style_a=p.style_b, style_b=p.style_a, points_a=p.points_b,
                             points_b=p.points_a)


# ----------------------------------------------------------------------------- pair files

def _entry_error(path: str, i: int, message: str) -> ValueError:
  return ValueError(f"{path}: pairs[{i}]: {message} (format: chairgen/keypoint_pairs.py, "
                    "docs/evaluation.md, section 5.7)")


def _points(entry, field: str, path: str, i: int, image_size: float) -> np.ndarray:
  try:
    points = np.asarray(entry[field], np.float64)
  except (KeyError, TypeError, ValueError) as e:
    raise _entry_error(path, i, f"'{field}' must be a list of [x, y] pairs ({e})") from e
  if points.ndim != 2 or points.shape[1] != 2 or not len(points):
    raise _entry_error(path, i, f"'{field}' must be a non-empty list of [x, y], got shape "
                                f"{points.shape}")
  if not np.isfinite(points).all() or (points < 0).any() or (points > image_size).any():
    raise _entry_error(path, i, f"'{field}' has points outside [0, {image_size:g}] or not "
                                "finite")
  return points


def read_pairs(path: str, trained) -> list[Pair]:
  """Reads a pair file for a trained run, checking every entry against the run's models and
  stored views; a bad entry is an error that names it."""
  try:
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"pair file {path} does not exist") from e
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON: {e}") from e
  if not isinstance(record, dict) or record.get("format") != FORMAT:
    raise ValueError(f"{path}: not a pair file (needs \"format\": \"{FORMAT}\")")
  size = record.get("image_size")
  if not isinstance(size, (int, float)) or size <= 0:
    raise ValueError(f"{path}: 'image_size' must be the positive pixel size of the annotated "
                     f"images, got {size!r}")
  entries = record.get("pairs")
  if not isinstance(entries, list) or not entries:
    raise ValueError(f"{path}: 'pairs' must be a non-empty list")
  style_of = {name: s for s, name in enumerate(trained.style_names or [])}
  scale = trained.data.image_size / float(size)
  out = []
  for i, entry in enumerate(entries):
    if not isinstance(entry, dict):
      raise _entry_error(path, i, "each pair must be an object")
    styles = []
    for side in ("a", "b"):
      name = entry.get(side)
      if name not in style_of:
        raise _entry_error(path, i, f"'{side}' = {name!r} is not a training model of this run "
                                    f"({len(style_of)} models, e.g. {sorted(style_of)[:3]})")
      styles.append(style_of[name])
    if styles[0] == styles[1]:
      raise _entry_error(path, i, "'a' and 'b' are the same model")
    view = entry.get("view")
    if (not isinstance(view, (list, tuple)) or len(view) != 2
        or not all(isinstance(v, (int, float)) for v in view)):
      raise _entry_error(path, i, f"'view' must be [azimuth, elevation] in degrees, got {view!r}")
    try:
      trained.data.example_ids(styles, view[0], view[1])
    except KeyError as e:
      raise _entry_error(path, i, f"no stored image of both models at view {view}: {e}") from e
    pa, pb = (_points(entry, f, path, i, size) for f in ("points_a", "points_b"))
    if len(pa) != len(pb):
      raise _entry_error(path, i, f"'points_a' has {len(pa)} points, 'points_b' {len(pb)}")
    difficulty, split = entry.get("difficulty"), entry.get("split", TEST)
    if difficulty not in (SIMPLE, DIFFICULT):
      raise _entry_error(path, i, f"'difficulty' must be 'simple' or 'difficult', got "
                                  f"{difficulty!r}")
    if split not in (VALIDATION, TEST):
      raise _entry_error(path, i, f"'split' must be 'validation' or 'test', got {split!r}")
    names = tuple(str(n) for n in entry.get("names", ()))
    if names and len(names) != len(pa):
      raise _entry_error(path, i, f"'names' has {len(names)} entries for {len(pa)} points")
    out.append(Pair(styles[0], styles[1], float(view[0]), float(view[1]),
                    (pa * scale).astype(np.float32), (pb * scale).astype(np.float32),
                    difficulty, split, names, None))
  check_splits(out, path)
  return out


def check_splits(pairs: Sequence[Pair], what: str = "the pairs") -> None:
  """Validation and test must be disjoint (as unordered pairs) and the test split non-empty."""
  test = {frozenset((p.style_a, p.style_b)) for p in pairs if p.split == TEST}
  validation = {frozenset((p.style_a, p.style_b)) for p in pairs if p.split == VALIDATION}
  if not test:
    raise ValueError(f"{what}: no test pair")
  shared = test & validation
  if shared:
    raise ValueError(f"{what}: {len(shared)} pair(s) are in both validation and test, e.g. "
                     f"styles {sorted(next(iter(shared)))}; tuning must never see a test pair")


def to_record(pairs: Sequence[Pair], style_names: Sequence[str], image_size: int) -> dict:
  """Pairs as a pair-file record (points at `image_size`, the run's)."""
  return {"format": FORMAT, "image_size": int(image_size), "pairs": [
      {"a": style_names[p.style_a], "b": style_names[p.style_b],
       "view": [p.azimuth, p.elevation],
       "points_a": np.round(p.points_a.astype(np.float64), 4).tolist(),
       "points_b": np.round(p.points_b.astype(np.float64), 4).tolist(),
       "difficulty": p.difficulty, "split": p.split, "names": list(p.names),
       **({} if p.distance is None else {"factor_distance": p.distance})}
      for p in pairs]}


def write_pairs(path: str, record: dict) -> str:
  """Writes a pair-file record (`to_record`) atomically."""
  from chairgen import reports  # pylint: disable=g-import-not-at-top
  reports.write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
  return path
