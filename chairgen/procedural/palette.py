"""Colour palettes shared by the object families (RGB in [0, 1], jittered per model).

Every albedo stays at or below 0.9 so that a shaded pixel can never be pure white: the white
background then identifies the mask exactly (see `renderer`).
"""

from __future__ import annotations

import numpy as np

WOOD = ((0.55, 0.35, 0.18), (0.72, 0.52, 0.30), (0.40, 0.24, 0.12), (0.80, 0.65, 0.45),
        (0.30, 0.18, 0.10), (0.62, 0.42, 0.25))
FABRIC = ((0.70, 0.12, 0.10), (0.15, 0.25, 0.60), (0.20, 0.45, 0.25), (0.50, 0.50, 0.52),
          (0.82, 0.75, 0.60), (0.14, 0.14, 0.15), (0.85, 0.45, 0.10), (0.10, 0.50, 0.52),
          (0.45, 0.20, 0.50), (0.88, 0.88, 0.85), (0.60, 0.30, 0.20))
METAL = ((0.75, 0.76, 0.78), (0.12, 0.12, 0.12), (0.35, 0.36, 0.38))
PLASTIC = ((0.88, 0.88, 0.88), (0.85, 0.15, 0.12), (0.90, 0.75, 0.10), (0.10, 0.35, 0.75),
           (0.15, 0.60, 0.30), (0.10, 0.10, 0.10), (0.90, 0.50, 0.60))
CAR_PAINT = ((0.80, 0.10, 0.08), (0.10, 0.20, 0.55), (0.85, 0.85, 0.86), (0.12, 0.12, 0.13),
             (0.55, 0.56, 0.58), (0.20, 0.40, 0.25), (0.90, 0.70, 0.10), (0.35, 0.15, 0.10),
             (0.30, 0.55, 0.80), (0.60, 0.05, 0.15))
MAX_ALBEDO = 0.9


def pick(rng: np.random.Generator, palette, jitter: float = 0.05) -> list[float]:
  """A palette colour with a small per-channel jitter, rounded for readable factors."""
  base = np.asarray(palette[int(rng.integers(len(palette)))])
  color = np.clip(base + rng.uniform(-jitter, jitter, 3), 0.02, MAX_ALBEDO)
  return [round(float(c), 3) for c in color]


def color_scheme(rng: np.random.Generator, material: str) -> tuple[list, list, list]:
  """(seat or top, back or second part, frame) colours for a furniture material scheme."""
  if material == "wood":
    wood = pick(rng, WOOD)
    return wood, wood, wood
  if material == "upholstered":
    fabric = pick(rng, FABRIC)
    return fabric, fabric, pick(rng, WOOD + METAL[1:2])
  if material == "plastic":
    plastic = pick(rng, PLASTIC)
    return plastic, plastic, pick(rng, METAL + (tuple(plastic),))
  if material == "office":
    fabric = pick(rng, FABRIC[3:4] + FABRIC[5:6] + FABRIC[1:2])
    return fabric, fabric, pick(rng, METAL[:2])
  if material == "two_tone":
    return pick(rng, FABRIC), pick(rng, FABRIC), pick(rng, METAL + WOOD[:2])
  raise ValueError(f"Unknown material {material!r}.")
