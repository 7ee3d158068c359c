"""The one writer of image grids and strips, and compositing on white as in the paper's figures.

Every figure in chairgen goes through `image_grid` / `write_grid`: rows x columns of equally
sized float images in [0, 1] (or uint8), optional per-cell highlight colour (e.g. the green
background the paper uses for elevations not seen in training), written as PNG atomically.
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

import numpy as np
from PIL import Image

from chairgen import distributed

WHITE = (1.0, 1.0, 1.0)
HIGHLIGHT_GREEN = (0.75, 0.95, 0.75)


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] or float images -> float32 in [0, 1]."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  return np.clip(images.astype(np.float32), 0.0, 1.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Float images in [0, 1] (clipped) -> uint8, rounding to nearest."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images
  return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite_on_white(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Puts a segmented-out image x·s (black background) on white using mask s in [0, 1].

  The generator predicts T(x·s): the object on black. Adding (1 - s) replaces the black
  background by white and blends edge pixels exactly as x·s + (1 - s)·white would.
  Shapes: rgb [..., H, W, 3], mask [..., H, W, 1] -> [..., H, W, 3] float32.
  """
  rgb = to_float(rgb)
  mask = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
  if mask.shape[-1] != 1:
    raise ValueError(f"mask must end in a channel axis of size 1, got shape {mask.shape}")
  return np.clip(rgb + (1.0 - mask), 0.0, 1.0)


def image_grid(
    images: np.ndarray | Sequence[Sequence[np.ndarray]],
    *,
    pad: int = 2,
    pad_value: Sequence[float] = WHITE,
    highlight: np.ndarray | None = None,
    highlight_color: Sequence[float] = HIGHLIGHT_GREEN,
) -> np.ndarray:
  """Tiles images_RxCxHxWx3 into one uint8 picture with `pad` pixels between cells.

  `highlight` (bool [R, C]) paints the frame of those cells in `highlight_color`. Images of
  one channel are shown as grey.
  """
  grid = to_float(np.asarray(images))
  if grid.ndim == 4:  # a single row
    grid = grid[None]
  if grid.ndim != 5:
    raise ValueError(f"expected images of shape [rows, cols, H, W, C], got {grid.shape}")
  if grid.shape[-1] == 1:
    grid = np.repeat(grid, 3, axis=-1)
  if grid.shape[-1] != 3:
    raise ValueError(f"images need 1 or 3 channels, got {grid.shape[-1]}")
  rows, cols, h, w, _ = grid.shape
  out = np.empty((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.float32)
  out[...] = np.asarray(pad_value, np.float32)
  if highlight is not None:
    highlight = np.asarray(highlight, bool)
    if highlight.shape != (rows, cols):
      raise ValueError(f"highlight must have shape {(rows, cols)}, got {highlight.shape}")
  for r in range(rows):
    for c in range(cols):
      y, x = pad + r * (h + pad), pad + c * (w + pad)
      if highlight is not None and highlight[r, c] and pad > 0:
        out[y - pad:y + h + pad, x - pad:x + w + pad] = np.asarray(highlight_color, np.float32)
      out[y:y + h, x:x + w] = grid[r, c]
  return to_uint8(out)


def save_png(path: str | os.PathLike, image: np.ndarray) -> str:
  """Writes an image atomically (temp file + rename) so a reader never sees half a PNG.

  In a multi-process run only process 0 writes (every process computes the same image)."""
  path = os.fspath(path)
  if not distributed.is_primary():
    return path
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".png.tmp", dir=os.path.dirname(path) or ".")
  os.close(fd)
  try:
    Image.fromarray(to_uint8(image)).save(tmp, format="PNG")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def write_grid(path: str | os.PathLike, images, **kwargs) -> str:
  """`image_grid` then `save_png`; returns the path."""
  return save_png(path, image_grid(images, **kwargs))


def write_strip(path: str | os.PathLike, images_NxHxWxC, **kwargs) -> str:
  """One row of images (a rotation, an elevation sweep, a morph)."""
  images = np.asarray(images_NxHxWxC)
  highlight = kwargs.pop("highlight", None)
  if highlight is not None:
    highlight = np.asarray(highlight, bool)[None]
  return write_grid(path, images[None], highlight=highlight, **kwargs)
