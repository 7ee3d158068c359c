"""The image-grid writer and compositing on white."""

import numpy as np
from PIL import Image
import pytest

from chairgen import imaging


def test_composite_on_white_replaces_black_background_and_blends_edges():
  rgb = np.zeros((2, 2, 3), np.float32)
  rgb[0, 0] = (0.2, 0.4, 0.6)           # object pixel (x·s with s = 1)
  rgb[0, 1] = (0.1, 0.2, 0.3)           # half-covered edge pixel: x·s with x = 2·rgb, s = 0.5
  mask = np.array([[1.0, 0.5], [0.0, 0.0]], np.float32)[..., None]
  out = imaging.composite_on_white(rgb, mask)
  np.testing.assert_allclose(out[0, 0], (0.2, 0.4, 0.6), atol=1e-6)
  # x·s + (1 - s)·white: the colour x = (0.2, 0.4, 0.6) blended half with white.
  np.testing.assert_allclose(out[0, 1], (0.6, 0.7, 0.8), atol=1e-6)
  np.testing.assert_allclose(out[1], 1.0)


def test_composite_rejects_masks_without_channel_axis():
  with pytest.raises(ValueError, match="channel axis"):
    imaging.composite_on_white(np.zeros((4, 4, 3)), np.zeros((4, 4)))


def test_image_grid_layout_padding_and_highlight():
  images = np.zeros((2, 3, 4, 5, 3), np.float32)
  images[1, 2] = 0.5
  highlight = np.zeros((2, 3), bool)
  highlight[0, 1] = True
  grid = imaging.image_grid(images, pad=2, highlight=highlight)
  assert grid.shape == (2 * (4 + 2) + 2, 3 * (5 + 2) + 2, 3) and grid.dtype == np.uint8
  assert (grid[0, 0] == 255).all()                       # white padding
  assert (grid[2:6, 2:7] == 0).all()                      # first cell
  assert (grid[8:12, 16:21] == 128).all()                 # cell (1, 2)
  frame = grid[0, 9]                                      # above cell (0, 1): highlighted
  np.testing.assert_array_equal(frame, imaging.to_uint8(np.array(imaging.HIGHLIGHT_GREEN)))


def test_grid_rejects_bad_shapes():
  with pytest.raises(ValueError, match="rows, cols"):
    imaging.image_grid(np.zeros((4, 4, 3)))
  with pytest.raises(ValueError, match="highlight"):
    imaging.image_grid(np.zeros((1, 2, 4, 4, 3)), highlight=np.zeros((2, 2), bool))


def test_write_strip_and_grid_write_pngs_atomically(tmp_path):
  strip = np.random.default_rng(0).random((5, 8, 8, 3)).astype(np.float32)
  path = imaging.write_strip(tmp_path / "sub" / "strip.png", strip, pad=1)
  with Image.open(path) as im:
    assert im.size == (5 * 9 + 1, 8 + 2)
  assert not [p for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")]
  grey = imaging.write_grid(tmp_path / "grey.png", np.zeros((2, 2, 4, 4, 1), np.uint8))
  with Image.open(grey) as im:
    assert im.mode == "RGB"
