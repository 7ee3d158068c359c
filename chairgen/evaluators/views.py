"""Fixed views of fixed styles, generated and (where stored) ground truth: Figures 4 and 5.

`views` lists [style, azimuth, elevation] triples. Every run evaluated with the same list
draws the same views, so a section can stack runs into one figure (ground truth, then one row
per run) from the stored arrays without generating again.

Metrics: mse over the views that have ground truth (`_common.image_mse`), num_views.
Picture `views`: ground truth above generated (white where a view has no ground truth).
Arrays: generated, ground_truth (uint8 [N, S, S, 3]), has_truth (bool [N]), mse (per view).
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen.evaluators import Result
from chairgen.evaluators import _common


class Evaluator:

  def __init__(self, views=()):
    views = [tuple(v) for v in views]
    if not views or any(len(v) != 3 for v in views):
      raise ValueError(f"views must be a non-empty list of [style, azimuth, elevation], "
                       f"got {views!r}")
    self.views = views

  def run(self, trained, rng) -> Result:
    style, azimuth, elevation = (np.asarray(c) for c in zip(*self.views))
    out = trained.generate(trained.one_hot(style.astype(np.int64)), azimuth, elevation,
                           rng=rng)
    truth, has_truth = _common.stored_truth(trained.data, style, azimuth, elevation,
                                            trained.image_size)
    errors = _common.image_mse(out.composite, truth)
    metrics = {"num_views": float(len(style))}
    if has_truth.any():
      metrics["mse"] = float(errors[has_truth].mean())
    return Result(
        metrics=metrics,
        images={"views": imaging.image_grid(np.stack([truth, out.composite]))},
        arrays={"generated": imaging.to_uint8(out.composite), "ground_truth":
                imaging.to_uint8(truth), "has_truth": has_truth,
                "mse": np.where(has_truth, errors, np.nan)})
