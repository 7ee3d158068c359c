"""Section 5.2's nearest-neighbour baseline on a `by_style` run's target chairs (Figure 9).

No network is involved: for every target style, each given view picks the closest source chair
at that view (`feature`: 'rgb' or 'hog'), and the missing views are the linear-in-angle blend
of the neighbours' views documented in `chairgen.viewpoints`. The source chairs are the run's
non-target styles, read from its *training* views, so the baseline sees exactly the images the
network saw; it therefore needs the with-transfer setting (sources with every view) and says so
otherwise. The error is `_common.image_mse` over every missing view of every target style, the
same views as the `reconstruction` evaluator with split='test'.

Metrics: mse, num_examples. Picture `neighbours`: per target, its given views above their
neighbours. Arrays: ids (missing views), mse (per view), predicted (uint8, per view),
neighbour_models (int64 [targets, k], model ids).
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import viewpoints
from chairgen.evaluators import Result
from chairgen.evaluators import _common


class Evaluator:

  def __init__(self, feature: str = "rgb"):
    if feature not in viewpoints.FEATURES:
      raise ValueError(f"feature must be one of {viewpoints.FEATURES}, got {feature!r}")
    self.feature = feature

  def run(self, trained, rng) -> Result:
    del rng  # deterministic
    data = trained.data
    meta = data.pipeline.metadata
    targets = viewpoints.target_views(data)
    target_models = {t.model for t in targets}
    train = data.split.train
    source_models = np.array(sorted(set(meta.model[train].tolist()) - target_models))
    source_styles = data.pipeline.style_lookup[source_models]
    rings: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    ids_all, errors, predicted_all, neighbour_models, sheet = [], [], [], [], []
    for t in targets:
      ring_az = np.sort(np.concatenate([t.given_azimuths, t.missing_azimuths]))
      key = (t.elevation, tuple(np.round(ring_az, 3)))
      if key not in rings:  # every target on the same ring shares the sources' images
        grid = (len(source_styles), len(ring_az))
        ring_ids = data.example_ids(np.repeat(source_styles, grid[1]), np.tile(ring_az, grid[0]),
                                    np.full(grid[0] * grid[1], t.elevation)).reshape(grid)
        untrained = ~np.isin(ring_ids, train)
        if untrained.any():
          i = np.argwhere(untrained)[0]
          raise ValueError(
              f"source chair view (model {source_models[i[0]]}, azimuth {ring_az[i[1]]:g}, "
              f"elevation {t.elevation:g}) is not in the run's training set: the "
              "nearest-neighbour baseline needs source chairs with every view, i.e. the "
              "with-transfer run (config.data.transfer=True)")
        batch = data.examples(ring_ids.ravel())
        images = _common.ground_truth_on_white(batch["image"], batch["mask"])
        images = images.reshape(ring_ids.shape + images.shape[1:])        # [N, R, S, S, 3]
        feats = viewpoints.features(images.reshape((-1,) + images.shape[2:]), self.feature)
        rings[key] = (ring_az, images, feats.reshape(ring_ids.shape + (-1,)))
      ring_az, images, feats = rings[key]
      given_pos = np.searchsorted(ring_az, t.given_azimuths)
      missing_pos = np.searchsorted(ring_az, t.missing_azimuths)
      batch = data.examples(np.concatenate([t.given_ids, t.missing_ids]))
      truth = _common.ground_truth_on_white(batch["image"], batch["mask"])
      given, missing = truth[:len(t.given_ids)], truth[len(t.given_ids):]
      predicted, neighbours = viewpoints.nearest_neighbour_predict(
          given, images[:, given_pos], images[:, missing_pos], t.given_azimuths,
          t.missing_azimuths, self.feature, source_given_features=feats[:, given_pos])
      ids_all.append(t.missing_ids)
      errors.append(_common.image_mse(predicted, missing))
      predicted_all.append(imaging.to_uint8(predicted))
      neighbour_models.append(source_models[neighbours])
      if len(sheet) < 8:
        shown = min(len(given), 8)
        sheet += [_common.pad_row(given[:shown], shown),
                  _common.pad_row(images[neighbours[:shown], given_pos[:shown]], shown)]
    errors = np.concatenate(errors)
    return Result(
        metrics={"mse": float(errors.mean()), "num_examples": float(len(errors))},
        images={"neighbours": imaging.image_grid(np.stack(sheet))},
        arrays={"ids": np.concatenate(ids_all), "mse": errors,
                "predicted": np.concatenate(predicted_all),
                "neighbour_models": np.stack(neighbour_models)},
        info={"feature": self.feature, "num_sources": int(len(source_models))})

