"""The transformation sheet of Figure 7, and how well each transformation is drawn (section 5.1).

For each style, rows are `augment.SHEET_ROWS` (translation, rotation, zoom, stretch,
saturation, brightness, hue), columns go from the opposite extreme through the identity (the
middle column) to the largest amount of the ranges the run was trained with
(`augment.transformation_sheet_thetas(config=run's augment config)`; the zoom row's left half
zooms *out*, which training never shows). Beyond the paper, each generated image is compared
with T_θ applied to the stored ground-truth view (`augment.apply`, both composited on white):

  mse_<row>      mean `_common.image_mse` over the row's non-identity columns and the styles
  mse_zoom_in, mse_zoom_out   the zoom row's two halves
  mse_identity   the middle column
  response_<row> Σ MSE(generated, generated identity) / Σ MSE(T_θ(truth), truth) over styles
                 and columns: how much of the true change the net draws (1: all, 0: none)

Picture `sheet` (first style, generated) and `sheet_truth` (T_θ of its ground truth).
Arrays: generated, truth (uint8 [styles, rows, columns, S, S, 3]), mse, object_area
(the mean of T_θ(mask)), change_generated and change_truth, [styles, rows, columns].
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from chairgen import augment
from chairgen import imaging
from chairgen.evaluators import Result


def row_errors(mse_SxRxC: np.ndarray) -> dict[str, np.ndarray]:
  """Per-style errors f64[styles] of each row (non-identity columns), zoom's halves, identity."""
  err = np.asarray(mse_SxRxC, np.float64)
  cols = err.shape[2]
  mid = cols // 2
  others = [c for c in range(cols) if c != mid]
  out = {row: err[:, r, others].mean(axis=1) for r, row in enumerate(augment.SHEET_ROWS)}
  zoom = augment.SHEET_ROWS.index("zoom")
  out["zoom_in"] = err[:, zoom, mid + 1:].mean(axis=1)
  out["zoom_out"] = err[:, zoom, :mid].mean(axis=1)
  out["identity"] = err[:, :, mid].mean(axis=1)
  return out


def changes(images) -> np.ndarray:
  """[styles, rows, columns]: MSE of each cell against its row's identity (middle) column."""
  x = np.asarray(images, np.float64)
  mid = x.shape[2] // 2
  return np.mean(np.square(x - x[:, :, mid:mid + 1]), axis=(3, 4, 5))


def responses(change_generated, change_truth) -> dict[str, float]:
  """Per row: Σ generated change / Σ true change over styles and non-identity columns.

  1 = the net changes the image as much as T_θ does, 0 = it ignores θ. Pooled (a ratio of
  sums) because a grey chair's hue or saturation change is ~0 and would blow up a per-chair
  ratio.
  """
  gen, true = row_errors(change_generated), row_errors(change_truth)
  return {k: float(gen[k].sum() / max(true[k].sum(), 1e-12)) for k in gen if k != "identity"}


class Evaluator:

  def __init__(self, styles=(0,), azimuth: float | None = None, elevation: float | None = None,
               num_columns: int = 7):
    if not styles:
      raise ValueError("styles must name at least one style")
    self.styles = [int(s) for s in styles]
    self.azimuth, self.elevation, self.num_columns = azimuth, elevation, int(num_columns)

  def _view(self, trained, style: int) -> tuple[float, float]:
    """The configured view, or the style's first stored view at its middle elevation."""
    if self.azimuth is not None and self.elevation is not None:
      return float(self.azimuth), float(self.elevation)
    views = trained.data.views_of(style)
    elevations = np.unique(views[:, 1])
    middle = elevations[(len(elevations) - 1) // 2]
    ring = views[views[:, 1] == middle]
    return float(ring[len(ring) // 8, 0]), float(middle)  # ~45° off the front, if stored

  def run(self, trained, rng) -> Result:
    thetas = np.asarray(augment.transformation_sheet_thetas(self.num_columns,
                                                            trained.config.augment))
    rows, cols = thetas.shape[:2]
    flat = thetas.reshape(rows * cols, -1)
    generated, truth, areas = [], [], []
    for style in self.styles:
      az, el = self._view(trained, style)
      out = trained.generate(trained.one_hot(np.full(rows * cols, style)),
                             np.full(rows * cols, az), np.full(rows * cols, el), flat, rng=rng)
      image, mask = trained.data.ground_truth([style], [az], [el])
      image = np.repeat(image, rows * cols, axis=0)
      mask = np.repeat(mask, rows * cols, axis=0)
      t_image, t_mask = augment.apply(jnp.asarray(flat), jnp.asarray(image), jnp.asarray(mask))
      areas.append(np.asarray(t_mask).reshape(rows, cols, -1).mean(axis=-1))
      generated.append(out.composite.reshape((rows, cols) + out.composite.shape[1:]))
      truth.append(imaging.composite_on_white(np.asarray(t_image), np.asarray(t_mask))
                   .reshape((rows, cols) + out.composite.shape[1:]))
    generated, truth = np.stack(generated), np.stack(truth)
    err = np.mean(np.square(generated.astype(np.float64) - truth), axis=(3, 4, 5))
    metrics = {f"mse_{k}": float(v.mean()) for k, v in row_errors(err).items()}
    change_generated, change_truth = changes(generated), changes(truth)
    metrics.update({f"response_{k}": v
                    for k, v in responses(change_generated, change_truth).items()})
    return Result(
        metrics=metrics,
        images={"sheet": imaging.image_grid(generated[0]),
                "sheet_truth": imaging.image_grid(truth[0])},
        arrays={"generated": imaging.to_uint8(generated), "truth": imaging.to_uint8(truth),
                "mse": err, "object_area": np.stack(areas),
                "change_generated": change_generated, "change_truth": change_truth},
        info={"rows": list(augment.SHEET_ROWS), "trained_with_augmentation":
              bool(trained.config.augment.enabled)})
