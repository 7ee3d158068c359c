"""Figure 8: target chairs of a `by_style` run turned from one given view to the next.

For each of the first `num_styles` target styles (style order, the same chairs in every run of
one target set), the arc of the turntable from its first given azimuth to the next given one
(with one given view: the whole turn back to it) is drawn at the ring's stored azimuths, at
most `num_columns` of them evenly spaced with both ends kept: the ends are views the net was
trained on, everything between is interpolated. Ground truth is drawn beside it.

Metrics: mse (over the interpolated cells), num_styles. Picture `arcs`: per style, ground
truth above generated, trained views framed in green. Arrays (uint8 [T, C, S, S, 3], white
cells where an arc has fewer than C views): generated, ground_truth; azimuths [T, C] (NaN
padding), given (bool [T, C]), styles [T].
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import viewpoints
from chairgen.evaluators import Result
from chairgen.evaluators import _common


def arc(target: viewpoints.TargetViews, num_columns: int) -> tuple[np.ndarray, np.ndarray]:
  """(azimuths on the ring from the first given view to the next, is-given flags)."""
  given = np.sort(target.given_azimuths)
  ring = np.sort(np.concatenate([given, target.missing_azimuths]))
  start = given[0]
  end = given[1] if len(given) > 1 else given[0] + 360.0
  unrolled = np.where(ring < start, ring + 360.0, ring)
  inside = np.sort(unrolled[(unrolled >= start) & (unrolled <= end)])
  if len(given) == 1:
    inside = np.append(inside, end)  # the turn ends where it began
  keep = np.unique(np.round(np.linspace(0, len(inside) - 1, min(num_columns, len(inside))))
                   ).astype(int)
  azimuths = inside[keep]
  is_given = np.isin(np.round(azimuths % 360.0, 3), np.round(given % 360.0, 3))
  return azimuths % 360.0, is_given


class Evaluator:

  def __init__(self, num_styles: int = 3, num_columns: int = 9):
    if num_styles < 1 or num_columns < 2:
      raise ValueError(f"need num_styles >= 1 and num_columns >= 2, got {num_styles}, "
                       f"{num_columns}")
    self.num_styles, self.num_columns = int(num_styles), int(num_columns)

  def run(self, trained, rng) -> Result:
    targets = viewpoints.target_views(trained.data)[:self.num_styles]
    size = trained.image_size
    shape = (len(targets), self.num_columns, size, size, 3)
    generated, truth = np.ones(shape, np.float32), np.ones(shape, np.float32)
    azimuths = np.full(shape[:2], np.nan)
    given = np.zeros(shape[:2], bool)
    errors = []
    for i, t in enumerate(targets):
      az, is_given = arc(t, self.num_columns)
      c = len(az)
      styles, elevations = np.full(c, t.style), np.full(c, t.elevation)
      out = trained.generate(trained.one_hot(styles), az, elevations, rng=rng)
      batch = trained.data.examples(trained.data.example_ids(styles, az, elevations))
      gt = _common.ground_truth_on_white(batch["image"], batch["mask"])
      generated[i, :c], truth[i, :c], azimuths[i, :c], given[i, :c] = out.composite, gt, az, is_given
      errors.append(_common.image_mse(out.composite[~is_given], gt[~is_given]))
    rows = np.stack([r for pair in zip(truth, generated) for r in pair])
    frame = np.repeat(given, 2, axis=0)
    errors = np.concatenate(errors)
    return Result(
        metrics={"mse": float(errors.mean()) if len(errors) else 0.0,
                 "num_styles": float(len(targets))},
        images={"arcs": imaging.image_grid(rows, highlight=frame)},
        arrays={"generated": imaging.to_uint8(generated), "ground_truth": imaging.to_uint8(truth),
                "azimuths": azimuths, "given": given,
                "styles": np.array([t.style for t in targets], np.int64)})
