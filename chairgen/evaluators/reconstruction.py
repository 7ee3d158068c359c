"""Per-pixel MSE and mask IoU of generated views against the ground truth (Tables 1 and 2).

`split='train'` measures how well the net reproduces the views it was trained on (the
protocol of Tables 1 and 2); `split='test'` measures the views the run's split held out (the
training loop's periodic evaluation). The MSE is `_common.image_mse` (images on white, [0, 1],
mean over pixels and channels, then over views); `max_examples` takes an evenly strided subset
of the split's ids in (model, elevation, azimuth) order so that every style is covered.

Metrics: mse, mask_iou, num_examples (only num_examples = 0, and `info['skipped']` saying
why, when the split holds no such views, e.g. `by_elevation` on real data). Picture `samples`: the first 16 views, ground truth
above generated. Arrays: ids (example ids), styles, mse (per view).
"""

from __future__ import annotations

import numpy as np

from chairgen.evaluators import Result
from chairgen.evaluators import _common

SPLITS = ("train", "test")


class Evaluator:

  def __init__(self, split: str = "test", max_examples: int | None = None,
               batch_size: int = 64, columns: int = 8):
    if split not in SPLITS:
      raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    self.split, self.max_examples = split, max_examples
    self.batch_size, self.columns = int(batch_size), int(columns)

  def run(self, trained, rng) -> Result:
    data = trained.data
    ids = data.split.train if self.split == "train" else data.split.test
    styles = data.split.train_styles if self.split == "train" else data.split.test_styles
    ids = ids[styles >= 0]  # test views of styles the net never saw have no input
    meta = data.pipeline.metadata
    ids = ids[np.lexsort((meta.azimuth[ids], meta.elevation[ids], meta.model[ids]))]
    ids = _common.evenly_spaced(ids, self.max_examples)
    if not len(ids):  # e.g. by_elevation on real data, which has no unseen elevations
      return Result(metrics={"num_examples": 0.0}, info={
          "skipped": f"the run's {self.split} split holds no views of trained styles (no "
                     "ground truth to compare with; config.data.split)"})
    errors, iou_num, iou_den = [], 0, 0
    first_gt, first_gen, style_list = [], [], []
    for batch, out, truth in _common.generate_stored_views(trained, ids, rng=rng,
                                                           batch_size=self.batch_size):
      errors.append(_common.image_mse(out.composite, truth))
      p, t = out.mask > 0.5, batch["mask"] > 0.5
      iou_num += int(np.logical_and(p, t).sum())
      iou_den += int(np.logical_or(p, t).sum())
      style_list.append(batch["style"])
      if not len(first_gt):
        first_gt, first_gen = truth[:2 * self.columns], out.composite[:2 * self.columns]
    errors = np.concatenate(errors)
    return Result(
        metrics={"mse": float(errors.mean()), "mask_iou": iou_num / max(iou_den, 1),
                 "num_examples": float(len(ids))},
        images={"samples": _common.pairs_sheet(first_gt, first_gen, self.columns)},
        arrays={"ids": ids, "styles": np.concatenate(style_list), "mse": errors})
