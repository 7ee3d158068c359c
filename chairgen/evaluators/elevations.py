"""Section 5.3: the error per class and elevation, and Figures 10 and 11's elevation sweeps.

For each class of `classes` that the run trained on and each elevation of `elevations`, the
MSE (`_common.image_mse`) of the generated views against every stored view of that class at
that elevation (trained-on or held out; `max_views` evenly strided per cell), so a net's
unseen elevations and its trained ones are measured alike. Cells without stored views (real
data: Aubry's chairs have only 20 and 30, ShapeNet tables 0..40) get no number, only pictures.

The sweeps: the first `figure_models` models of each class, at `figure_azimuth`, at every
elevation of `elevations`; models are chosen by model id, so runs reading one dataset (the
chairs-only, tables-only and chairs + tables nets of one chairs + tables dataset) show the same
objects, whatever their style indices.

Metrics: mse_<class>_el<e>, num_<class>_el<e> (views measured), and mse_<class>_seen /
mse_<class>_unseen (mean over the elevations the run did / did not train that class on, of the
cells with views). Picture `sweep_<class>`: ground truth above generated, unseen elevations on
green. Arrays per class: <class>_rgb and <class>_mask (uint8 [M, E, S, S, 3|1], the net's x·s
and mask), <class>_truth (uint8 on white, white without ground truth), <class>_has_truth
(bool [M, E]), <class>_trained (bool [E]), <class>_models (int64 [M]); elevations (f64 [E]).
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import splits
from chairgen.evaluators import Result
from chairgen.evaluators import _common

UNSEEN_BACKGROUND = (0.75, 0.92, 0.75)  # the paper's green behind elevations not trained on


class Evaluator:

  def __init__(self, classes=("chair", "table"), elevations=tuple(range(0, 100, 10)),
               figure_models: int = 3, figure_azimuth: float = 60.0,
               max_views: int | None = None, batch_size: int = 64):
    splits.class_ids(list(classes))  # validates the names
    if not elevations:
      raise ValueError("elevations must list at least one elevation (degrees)")
    self.classes = tuple(classes)
    self.elevations = np.asarray(elevations, np.float64)
    self.figure_models, self.figure_azimuth = int(figure_models), float(figure_azimuth)
    self.max_views, self.batch_size = max_views, int(batch_size)

  def run(self, trained, rng) -> Result:
    data = trained.data
    meta = data.pipeline.metadata
    lookup = data.pipeline.style_lookup
    trained_on = np.zeros(len(meta), bool)
    trained_on[data.split.train] = True
    metrics, images, arrays = {}, {}, {"elevations": self.elevations}
    for name in self.classes:
      of_class = (meta.class_id == splits.CLASS_NAMES.index(name)) & (lookup[meta.model] >= 0)
      if not of_class.any():
        continue  # the run never trained this class (e.g. tables for the chairs-only net)
      seen_el = np.unique(meta.elevation[of_class & trained_on])
      seen = np.isin(np.round(self.elevations, 3), np.round(seen_el, 3))
      per_el = []
      for e, is_seen in zip(self.elevations, seen):
        ids = np.flatnonzero(of_class & np.isclose(meta.elevation, e))
        if not len(ids):
          per_el.append(None)
          continue
        ids = ids[np.lexsort((meta.azimuth[ids], meta.model[ids]))]
        ids = _common.evenly_spaced(ids, self.max_views)
        errors = [_common.image_mse(out.composite, truth) for _, out, truth in
                  _common.generate_stored_views(trained, ids, rng=rng,
                                                batch_size=self.batch_size)]
        mse = float(np.concatenate(errors).mean())
        metrics[f"mse_{name}_el{e:g}"] = mse
        metrics[f"num_{name}_el{e:g}"] = float(len(ids))
        per_el.append((mse, is_seen))
      for label, want in (("seen", True), ("unseen", False)):
        values = [cell[0] for cell in per_el if cell is not None and cell[1] == want]
        if values:
          metrics[f"mse_{name}_{label}"] = float(np.mean(values))
      sweep = self._sweep(trained, rng, np.unique(meta.model[of_class])[:self.figure_models],
                          seen)
      for key, value in sweep.items():
        arrays[f"{name}_{key}"] = value
      images[f"sweep_{name}"] = sweep_picture(sweep["rgb"], sweep["mask"], sweep["truth"],
                                              sweep["trained"])
    if not arrays.keys() - {"elevations"}:
      raise ValueError(f"the run trained none of the classes {list(self.classes)}")
    return Result(metrics=metrics, images=images, arrays=arrays)

  def _sweep(self, trained, rng, models, seen) -> dict[str, np.ndarray]:
    data = trained.data
    m, e = len(models), len(self.elevations)
    styles = np.repeat(data.pipeline.style_lookup[models], e)
    elevations = np.tile(self.elevations, m)
    azimuths = np.full(m * e, self.figure_azimuth)
    out = trained.generate(trained.one_hot(styles), azimuths, elevations, rng=rng,
                           batch_size=self.batch_size)
    size = trained.image_size
    truth, has_truth = _common.stored_truth(data, styles, azimuths, elevations, size)
    shape = (m, e, size, size)
    return {"rgb": imaging.to_uint8(out.rgb).reshape(shape + (3,)),
            "mask": imaging.to_uint8(out.mask).reshape(shape + (1,)),
            "truth": imaging.to_uint8(truth).reshape(shape + (3,)),
            "has_truth": has_truth.reshape(m, e), "trained": seen,
            "models": np.asarray(models, np.int64)}


def on_background(rgb_uint8: np.ndarray, mask_uint8: np.ndarray, trained: np.ndarray
                  ) -> np.ndarray:
  """f32 [..., E, S, S, 3]: generated views on white, or on green at untrained elevations."""
  rgb, mask = imaging.to_float(rgb_uint8), imaging.to_float(mask_uint8)
  background = np.where(np.asarray(trained, bool)[:, None, None, None],
                        np.ones(3, np.float32), np.asarray(UNSEEN_BACKGROUND, np.float32))
  return np.clip(rgb + (1.0 - mask) * background, 0.0, 1.0)


def sweep_picture(rgb, mask, truth, trained) -> np.ndarray:
  """uint8: per model, ground truth above its generated sweep (unseen elevations on green)."""
  generated = on_background(rgb, mask, trained)
  rows = [r for pair in zip(imaging.to_float(truth), generated) for r in pair]
  return imaging.image_grid(np.stack(rows))
