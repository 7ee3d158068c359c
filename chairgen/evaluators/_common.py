"""Helpers shared by the evaluators: the one image-error definition, example selection, sheets.

The per-pixel MSE of this project (Tables 1 and 2, held-out views, transformations) is
`image_mse`: prediction and ground truth are both composited on white, the generated image as
clip(rgb, 0, 1) + (1 - p) with p the predicted mask probability, the ground truth as
x·s + (1 - s); values in [0, 1]; the mean over pixels and the 3 channels, then over images.
That is what the paper's figures show (objects on white) and what `losses.composited_mse`
logs during training; docs/evaluation.md says why it was chosen.
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging


def ground_truth_on_white(image_uint8: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """x·s + (1 - s) for stored views (uint8 image on white, {0,1} mask) -> f32 in [0, 1]."""
  mask = np.asarray(mask, np.float32)
  return imaging.composite_on_white(imaging.to_float(image_uint8) * mask, mask)


def image_mse(predicted_on_white: np.ndarray, true_on_white: np.ndarray) -> np.ndarray:
  """Per-image mean squared error over pixels and channels, f64[N]."""
  diff = np.asarray(predicted_on_white, np.float64) - np.asarray(true_on_white, np.float64)
  return np.mean(np.square(diff).reshape(len(diff), -1), axis=1)


def evenly_spaced(ids: np.ndarray, max_examples: int | None) -> np.ndarray:
  """At most max_examples of `ids`, evenly strided (deterministic, covers every style)."""
  ids = np.asarray(ids)
  if max_examples is None or max_examples >= len(ids):
    return ids
  if max_examples < 1:
    raise ValueError(f"max_examples must be >= 1 or None, got {max_examples}")
  return ids[(np.arange(max_examples) * len(ids)) // max_examples]


def generate_examples(trained, batch: dict, theta=None, **kwargs):
  """Generates the views of batch-format examples (their style and angles)."""
  style = trained.one_hot(batch["style"])
  return trained.generate(style, batch["azimuth"], batch["elevation"], theta, **kwargs)


def stored_truth(data, styles, azimuths, elevations, image_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(ground truth on white f32[N, S, S, 3], has_truth bool[N]) for arbitrary views: white and
  False where the dataset stores no such view (another grid, an unrendered elevation)."""
  truth = np.ones((len(styles), image_size, image_size, 3), np.float32)
  has_truth = np.zeros(len(styles), bool)
  for i, (s, a, e) in enumerate(zip(styles, azimuths, elevations)):
    try:
      batch = data.examples(data.example_ids([s], [a], [e]))
    except KeyError:
      continue
    truth[i] = ground_truth_on_white(batch["image"], batch["mask"])[0]
    has_truth[i] = True
  return truth, has_truth


def generate_stored_views(trained, ids, *, rng, batch_size: int = 64):
  """Yields (batch, generated, ground truth on white) for stored example ids, in chunks of
  4 · batch_size examples (bounded host memory)."""
  ids = np.asarray(ids, np.int64)
  for start in range(0, len(ids), 4 * batch_size):
    batch = trained.data.examples(ids[start:start + 4 * batch_size])
    out = generate_examples(trained, batch, rng=rng, batch_size=batch_size)
    yield batch, out, ground_truth_on_white(batch["image"], batch["mask"])


def pad_row(images: np.ndarray, columns: int) -> np.ndarray:
  """The first `columns` float images of a row, padded with white cells to `columns`."""
  images = imaging.to_float(images)[:columns]
  if len(images) == columns:
    return images
  blank = np.ones((columns - len(images),) + images.shape[1:], np.float32)
  return np.concatenate([images, blank])


def pairs_sheet(ground_truth: np.ndarray, generated: np.ndarray, columns: int = 8) -> np.ndarray:
  """uint8 sheet: rows of `columns` ground-truth views, each above its generated image."""
  n = min(len(generated), 2 * columns)
  rows = []
  for start in range(0, n, columns):
    rows += [pad_row(ground_truth[start:start + columns], columns),
             pad_row(generated[start:start + columns], columns)]
  return imaging.image_grid(np.stack(rows))
