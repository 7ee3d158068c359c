"""Dense correspondences through generated morphs, on keypoint pairs: Table 3, Figure 18.

For each pair (a, b) at one view the net draws the 64-frame morph from style a to style b
(`sampling.morph_styles`), the flow is chained along it with the paper's drift compensation
(`correspondence.morph_flow`) and a's keypoints are moved through it into b. Beside it, on the
same pairs and keypoints:

  morph_<m>            the paper's method with flow method m (`correspondence.METHODS`)
  morph_rendered_ends_<m>  the same with the rendered a and b put before and after the
                       morph's frames (not in the paper: what the morph gives when the net's
                       own reconstruction error of the two ends is taken out)
  direct_<m>           flow m straight from the rendered image a to the rendered image b
  direct_generated_<m> flow m straight from the morph's first frame to its last (no morph)
  sift                 SIFT descriptor matching (`correspondence.sift_match`)
  identity             no motion: each keypoint stays where it was in a (the trivial floor
                       every method must beat)
  oracle               the ground truth through the same bilinear lookup (the floor)

Pairs come from `pairs_file` (a pair file, `chairgen.keypoint_pairs`) or, on procedural data,
from `keypoint_pairs.procedural_pairs` at `keypoint_pairs.shared_view`: the stored view
nearest (`azimuth`, `elevation`) among those where every chair has a training image. Every
approach's parameters are tuned on the validation pairs: each setting of its grid
(`grids[approach family]`: 'dis', 'variational', 'sift') is run on them and the one with the
lowest mean displacement is used on the test pairs, which are never used to choose.

Every image (rendered, generated) is resized bicubically to `work_size` px (default
`report_size`, the paper's 128) before flow or matching, and the keypoints with it, so that
patch sizes, pyramid depths and SIFT's window (about 10x its size) mean what they mean at the
paper's resolution: at 64 px a SIFT window of size 8 already spans the whole image.

The measure is the paper's: the displacement between predicted and true keypoints in pixels,
scaled to `report_size` px from the work size; metrics are means over
all test keypoints of all / simple / difficult pairs (`<approach>_all`, `_simple`,
`_difficult`) and the fraction of predictions that left the image or b's mask
(`<approach>_lost`). Arrays: per test keypoint `error_<approach>` (scaled), `status_<approach>`
(0 ok, 1 outside, 2 off mask), `pair` (test pair index), `predicted_<approach>`; per test pair
`pairs` [a, b], `difficulty` (0 simple, 1 difficult), `factor_distance`. Pictures:
`figure18` (test pairs, simple left and difficult right: a with its keypoints, then b with the
truth as rings and the prediction of the paper's method, then of direct flow, as dots joined to
their truth) and `morph_flow` (one difficult pair's morph every `drift_step` frames with the
chained flow from the first frame drawn as arrows and the keypoints carried along).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Mapping

import jax
import numpy as np

from chairgen import correspondence
from chairgen import imaging
from chairgen import keypoint_pairs
from chairgen import sampling
from chairgen import style_space
from chairgen.evaluators import Result

FLOW_FAMILIES = correspondence.METHODS
UNTUNED = ("identity", "oracle")   # approaches without parameters
STATUS_CODES = {correspondence.OK: 0, correspondence.OUTSIDE: 1, correspondence.OFF_MASK: 2}
DEFAULT_GRIDS = {
    "dis": {"preset": ["fast", "medium"], "patch_size": [6, 8, 12], "finest_scale": [0, 1]},
    "variational": {"alpha": [1.0, 3.0, 10.0, 30.0], "gamma": [5.0, 10.0, 20.0, 40.0]},
    "sift": {"size": [4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0]},
}


def expand_grid(grid: Mapping[str, list]) -> list[dict]:
  """{name: [values]} -> every combination as a dict (an empty grid is one default setting)."""
  names = sorted(grid)
  return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def family_of(approach: str) -> str:
  return approach if approach in UNTUNED + ("sift",) else approach.rsplit("_", 1)[-1]


class Evaluator:

  def __init__(self, pairs_file: str | None = None, num_validation: int = 20,
               num_test: int = 30, simple_fraction: float = 1 / 3, simple_max: int = 3,
               difficult_min: int = 6, validation_fraction: float = 0.4,
               azimuth: float = 34.0, elevation: float = 20.0, num_frames: int = 64,
               drift_step: int = correspondence.DRIFT_STEP, methods=FLOW_FAMILIES,
               grids=None, report_size: int = 128, work_size: int | None = None,
               show: int = 3):
    unknown = [m for m in methods if m not in FLOW_FAMILIES]
    if unknown or not methods:
      raise ValueError(f"methods must be a non-empty subset of {FLOW_FAMILIES}, got {methods!r}")
    grids = {**DEFAULT_GRIDS, **dict(grids or {})}
    bad = [k for k in grids if k not in DEFAULT_GRIDS]
    if bad:
      raise ValueError(f"grids has unknown method(s) {bad}; tune one of {sorted(DEFAULT_GRIDS)}")
    if num_frames < 2 or num_test < 1 or num_validation < 0 or report_size < 1:
      raise ValueError(f"need num_frames >= 2, num_test >= 1, num_validation >= 0, got "
                       f"{num_frames}, {num_test}, {num_validation}")
    self.pairs_file = pairs_file
    self.num_validation, self.num_test = int(num_validation), int(num_test)
    self.simple_fraction, self.validation_fraction = simple_fraction, validation_fraction
    self.simple_max, self.difficult_min = simple_max, difficult_min
    self.azimuth, self.elevation = float(azimuth), float(elevation)
    self.num_frames, self.drift_step = int(num_frames), int(drift_step)
    self.methods = tuple(methods)
    self.grids = {k: expand_grid(v) for k, v in grids.items()}
    self.report_size, self.show = int(report_size), int(show)
    self.work_size = int(work_size or report_size)
    self.approaches = ([f"morph_{m}" for m in self.methods]
                       + [f"morph_rendered_ends_{m}" for m in self.methods]
                       + [f"direct_{m}" for m in self.methods]
                       + [f"direct_generated_{m}" for m in self.methods] + ["sift", *UNTUNED])

  def check_run(self, run_config) -> None:
    """Real data has no keypoints: without a pair file, refuse before anything trains."""
    name = str(run_config.data.name)
    if not self.pairs_file and not name.startswith("procedural_turntables/"):
      raise ValueError(f"{name} has no keypoints: give the correspondences evaluator a pair "
                       "file (pairs_file=..., e.g. --config.evals.table3.pairs_file=PAIRS.json;"
                       " format in chairgen/keypoint_pairs.py)")
    if self.pairs_file:
      self.fingerprint()   # the file must exist

  def fingerprint(self) -> str:
    """The pair file's digest: an edited file makes stored results stale."""
    if not self.pairs_file:
      return ""
    try:
      with open(self.pairs_file, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]
    except FileNotFoundError as e:
      raise FileNotFoundError(f"pair file {self.pairs_file} does not exist") from e

  # -- pairs and images ----------------------------------------------------------------------

  def pairs(self, trained, rng) -> list[keypoint_pairs.Pair]:
    if self.pairs_file:
      return keypoint_pairs.read_pairs(self.pairs_file, trained)
    self.check_run(trained.config)
    models = style_space.procedural_models(trained)
    az, el = keypoint_pairs.shared_view(trained, self.azimuth, self.elevation, models=models)
    pairs = keypoint_pairs.procedural_pairs(
        trained, az, el, rng, num_validation=self.num_validation, num_test=self.num_test,
        simple_fraction=self.simple_fraction, simple_max=self.simple_max,
        difficult_min=self.difficult_min, validation_fraction=self.validation_fraction,
        models=models)
    keypoint_pairs.check_splits(pairs, "procedural pairs")
    return pairs

  def _inputs(self, trained, pairs, rng):
    """Per pair: (morph frames uint8[F, W, W, 3], rendered a, rendered b f32[W, W, 3], mask of
    b f32[W, W]), all resized to the work size W."""
    f, w = self.num_frames, self.work_size
    styles = np.concatenate([sampling.morph_styles(trained.num_styles, p.style_a, p.style_b, f)
                             for p in pairs])
    az = np.repeat([p.azimuth for p in pairs], f)
    el = np.repeat([p.elevation for p in pairs], f)
    frames = trained.generate(styles, az, el, rng=rng).composite
    frames = frames.reshape((len(pairs), f) + frames.shape[1:])
    out = []
    for p, morph in zip(pairs, frames):
      images, masks = trained.data.ground_truth([p.style_a, p.style_b], p.azimuth, p.elevation)
      out.append((imaging.to_uint8(np.stack([correspondence.resize(x, w) for x in morph])),
                  correspondence.resize(images[0], w), correspondence.resize(images[1], w),
                  correspondence.resize(masks[1, ..., 0], w, interpolation="linear")))
    return out

  # -- predicting ----------------------------------------------------------------------------

  def predict(self, approach: str, params: dict, pair: keypoint_pairs.Pair, inputs
              ) -> correspondence.Transferred:
    morph, image_a, image_b, mask_b = inputs
    family = family_of(approach)
    if approach == "identity":
      flow = np.zeros(image_b.shape[:2] + (2,), np.float32)
    elif approach == "oracle":
      flow = correspondence.nearest_point_field(pair.points_a, pair.points_b, image_b.shape[:2])
    elif approach == "sift":
      points = correspondence.sift_match(image_a, image_b, pair.points_a, mask_of_b=mask_b,
                                         **params)
      return correspondence.Transferred(
          points, correspondence.locate(points, image_b.shape[:2], mask_b))
    elif approach.startswith("morph_rendered_ends_"):
      frames = [imaging.to_uint8(image_a), *morph, imaging.to_uint8(image_b)]
      flow = correspondence.morph_flow(frames, family, drift_step=self.drift_step, params=params)
    elif approach.startswith("morph_"):
      flow = correspondence.morph_flow(morph, family, drift_step=self.drift_step, params=params)
    elif approach.startswith("direct_generated_"):
      flow = correspondence.optical_flow(morph[0], morph[-1], family, params=params)
    else:
      flow = correspondence.optical_flow(image_a, image_b, family, params=params)
    return correspondence.transfer_keypoints(pair.points_a, flow, mask_b)

  def _errors(self, approach, params, pairs, inputs, scale):
    preds = [self.predict(approach, params, p, x) for p, x in zip(pairs, inputs)]
    errors = [correspondence.displacements(t.points, p.points_b) * scale
              for t, p in zip(preds, pairs)]
    return preds, errors

  def tune(self, approach, pairs, inputs, scale) -> tuple[dict, list[dict]]:
    """The grid setting with the lowest mean validation displacement, and every trial."""
    grid = [{}] if approach in UNTUNED else self.grids[family_of(approach)]
    if not pairs or len(grid) == 1:
      return grid[0], []
    trials = []
    for params in grid:
      _, errors = self._errors(approach, params, pairs, inputs, scale)
      trials.append({"params": params, "validation_error": float(np.concatenate(errors).mean())})
    best = min(range(len(trials)), key=lambda i: trials[i]["validation_error"])
    return trials[best]["params"], trials

  # -- the run -------------------------------------------------------------------------------

  def run(self, trained, rng) -> Result:
    k_pairs, k_gen = jax.random.split(rng)
    to_work = self.work_size / trained.data.image_size
    pairs = [dataclasses.replace(p, points_a=p.points_a * to_work, points_b=p.points_b * to_work)
             for p in self.pairs(trained, k_pairs)]
    val = [p for p in pairs if p.split == keypoint_pairs.VALIDATION]
    test = [p for p in pairs if p.split == keypoint_pairs.TEST]
    inputs = self._inputs(trained, val + test, k_gen)
    val_inputs, test_inputs = inputs[:len(val)], inputs[len(val):]
    scale = self.report_size / self.work_size
    difficult = np.asarray([p.difficulty == keypoint_pairs.DIFFICULT for p in test])
    pair_of_point = np.concatenate([np.full(p.num_points, i) for i, p in enumerate(test)])
    subsets = {"all": np.ones(len(pair_of_point), bool), "simple": ~difficult[pair_of_point],
               "difficult": difficult[pair_of_point]}
    metrics, arrays, chosen, trials, predicted = {}, {}, {}, {}, {}
    for approach in self.approaches:
      chosen[approach], trials[approach] = self.tune(approach, val, val_inputs, scale)
      preds, errors = self._errors(approach, chosen[approach], test, test_inputs, scale)
      error = np.concatenate(errors)
      status = np.concatenate([[STATUS_CODES[s] for s in t.status] for t in preds])
      for name, keep in subsets.items():
        if keep.any():
          metrics[f"{approach}_{name}"] = float(error[keep].mean())
      metrics[f"{approach}_lost"] = float(np.mean(status > 0))
      arrays[f"error_{approach}"] = error
      arrays[f"status_{approach}"] = status.astype(np.int8)
      arrays[f"predicted_{approach}"] = np.concatenate([t.points for t in preds])
      predicted[approach] = preds
    metrics.update(num_test_pairs=float(len(test)), num_validation_pairs=float(len(val)),
                   num_test_keypoints=float(len(pair_of_point)),
                   num_simple=float(np.sum(~difficult)), num_difficult=float(np.sum(difficult)))
    arrays.update(
        pair=pair_of_point.astype(np.int32),
        pairs=np.asarray([[p.style_a, p.style_b] for p in test], np.int32),
        difficulty=difficult.astype(np.int8),
        factor_distance=np.asarray([np.nan if p.distance is None else p.distance for p in test]),
        truth=np.concatenate([p.points_b for p in test]),
        points_a=np.concatenate([p.points_a for p in test]),
        view=np.asarray([[p.azimuth, p.elevation] for p in test]))
    # the paper's method: the morph with the variational (Brox) flow, where it is run
    method = "variational" if "variational" in self.methods else self.methods[0]
    primary, direct = f"morph_{method}", f"direct_{method}"
    images = {"figure18": self.figure18(test, test_inputs, predicted, primary, direct),
              "morph_flow": self.flow_figure(test, test_inputs, chosen[primary], primary)}
    names = trained.style_names or [str(s) for s in range(trained.num_styles)]
    info = {"chosen_params": chosen, "tuning": trials, "primary": primary,
            "image_size": int(trained.data.image_size), "work_size": self.work_size,
            "pair_file": keypoint_pairs.to_record(val + test, names, self.work_size)}
    return Result(metrics=metrics, images=images, arrays=arrays, info=info)

  # -- pictures ------------------------------------------------------------------------------

  def _scale(self, size: int) -> int:
    return max(1, self.report_size // size)

  def figure18(self, pairs, inputs, predicted, primary, direct) -> np.ndarray:
    """Rows of pairs, simple on the left and difficult on the right (Figure 18's layout):
    a with its keypoints | b: truth (rings) and the paper's method | b: truth and direct flow."""
    columns = {}
    for kind in (keypoint_pairs.SIMPLE, keypoint_pairs.DIFFICULT):
      chosen = [i for i, p in enumerate(pairs) if p.difficulty == kind][:self.show]
      columns[kind] = [self._pair_cells(pairs[i], inputs[i], predicted[primary][i],
                                        predicted[direct][i]) for i in chosen]
    rows = max(len(c) for c in columns.values())
    size = inputs[0][1].shape[0] * self._scale(inputs[0][1].shape[0])
    blank = [np.full((size, size, 3), 255, np.uint8)] * 3
    grid = [[*(columns[keypoint_pairs.SIMPLE][r] if r < len(columns[keypoint_pairs.SIMPLE])
               else blank),
             *(columns[keypoint_pairs.DIFFICULT][r] if r < len(columns[keypoint_pairs.DIFFICULT])
               else blank)] for r in range(rows)]
    return imaging.image_grid(np.asarray(grid), pad=3)

  def _pair_cells(self, pair, inputs, ours, direct):
    _, image_a, image_b, _ = inputs
    s = self._scale(image_a.shape[0])
    colors = correspondence.palette(pair.num_points)
    cells = [correspondence.draw_points(image_a, pair.points_a, colors, scale=s)]
    for moved in (ours, direct):
      cell = correspondence.draw_points(image_b, pair.points_b, colors, scale=s, marker="ring")
      cells.append(_draw_scaled(cell, moved.points, pair.points_b, colors, s))
    return cells

  def flow_figure(self, pairs, inputs, params, primary) -> np.ndarray:
    """One difficult test pair's morph every drift_step frames: the chained flow from the first
    frame drawn as arrows on each shown frame, and a's keypoints carried along (dots)."""
    hard = [i for i, p in enumerate(pairs) if p.difficulty == keypoint_pairs.DIFFICULT]
    i = hard[0] if hard else 0
    pair, (morph, _, _, _) = pairs[i], inputs[i]
    ends, spans = correspondence.span_flows(morph, family_of(primary),
                                            drift_step=self.drift_step, params=params)
    flows = [np.zeros_like(spans[0])] + correspondence.cumulative(spans)
    shown = [0] + ends
    s = self._scale(morph.shape[1])
    colors = correspondence.palette(pair.num_points)
    first_mask = (imaging.to_float(morph[0]).min(-1) < 0.95).astype(np.float32)
    cells = []
    for frame, flow in zip(shown, flows):
      cell = correspondence.draw_flow(morph[frame], flow, scale=s, mask=first_mask,
                                      step=max(4, morph.shape[1] // 10))
      moved = pair.points_a + correspondence.sample(flow, pair.points_a)
      cells.append(_draw_scaled(cell, moved, None, colors, s))
    return imaging.image_grid(np.asarray([cells]), pad=3)


def _draw_scaled(image_upscaled, points, targets, colors, s):
  """Draws points given at the original size onto an image already upscaled s×."""
  return correspondence.draw_points(image_upscaled, np.asarray(points) * s, colors, scale=1,
                                    lines_to=None if targets is None else np.asarray(targets) * s)
