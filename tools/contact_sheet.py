r"""Draws a contact sheet of procedural objects, laid out like Figure 3 of the paper.

  python tools/contact_sheet.py --out=docs/images/procedural_contact_sheet.png

Top: 16 chairs (columns) x 8 azimuths (rows, elevation 20); then 8 tables and 8 cars, two
views each. Optionally marks keypoints (green visible, red hidden) with --keypoints.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from chairgen import procedural

_OUT = flags.DEFINE_string("out", "docs/images/procedural_contact_sheet.png", "Output PNG.")
_SIZE = flags.DEFINE_integer("image_size", 64, "Tile size in pixels.", lower_bound=16)
_SEED = flags.DEFINE_integer("seed", 0, "Object seed.", lower_bound=0)
_FIRST = flags.DEFINE_integer("first_index", 0, "Index of the first model of each family.",
                              lower_bound=0)
_KEYPOINTS = flags.DEFINE_bool("keypoints", False, "Mark keypoints (green visible, red hidden).")

CHAIR_AZIMUTHS = tuple(range(0, 360, 45))
PAIR_VIEWS = ((30, 20), (210, 30))  # Two views per table and car.
GAP = 2


def _tile(view: procedural.View, keypoints: bool) -> np.ndarray:
  image = view.rgb.copy()
  if keypoints:
    for (x, y), visible in zip(view.keypoints_px, view.keypoints_visible):
      r, c = int(y), int(x)
      image[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = (0, 200, 0) if visible else (230, 0, 0)
  return image


def _grid(tiles: list[list[np.ndarray]]) -> np.ndarray:
  """Rows of equally sized tiles, separated by white gaps."""
  size = tiles[0][0].shape[0]
  rows, cols = len(tiles), max(len(r) for r in tiles)
  out = np.full((rows * (size + GAP) - GAP, cols * (size + GAP) - GAP, 3), 255, np.uint8)
  for i, row in enumerate(tiles):
    for j, tile in enumerate(row):
      out[i * (size + GAP):i * (size + GAP) + size, j * (size + GAP):j * (size + GAP) + size] = tile
  return out


def contact_sheet(renderer: procedural.Renderer, seed: int = 0, first: int = 0,
                  keypoints: bool = False) -> np.ndarray:
  """uint8[H, W, 3]: the chairs block, then a row of tables and a row of cars."""
  chairs = [procedural.make_object("chairs", first + i, seed) for i in range(16)]
  chair_views = [renderer.render_views(c, [(az, 20) for az in CHAIR_AZIMUTHS]) for c in chairs]
  rows = [[_tile(chair_views[c][v], keypoints) for c in range(16)]
          for v in range(len(CHAIR_AZIMUTHS))]
  for family in ("tables", "cars"):
    row = []
    for i in range(8):
      obj = procedural.make_object(family, first + i, seed)
      row += [_tile(v, keypoints) for v in renderer.render_views(obj, PAIR_VIEWS)]
    rows.append(row)
  blocks = [_grid(rows[:len(CHAIR_AZIMUTHS)]), _grid(rows[-2:-1]), _grid(rows[-1:])]
  spacer = np.full((4 * GAP, blocks[0].shape[1], 3), 255, np.uint8)
  return np.concatenate([blocks[0], spacer, blocks[1], spacer, blocks[2]])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  sheet = contact_sheet(procedural.Renderer(_SIZE.value), _SEED.value, _FIRST.value,
                        _KEYPOINTS.value)
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  Image.fromarray(sheet).save(_OUT.value, optimize=True)
  print(f"Wrote {_OUT.value} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
  app.run(main)
