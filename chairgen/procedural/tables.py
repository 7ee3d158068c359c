"""Parametric tables: rectangular, round or oval tops on four legs, a pedestal or trestles.

Factors: top shape, width, depth, thickness, height class (coffee, dining, bar) and height,
support style, leg profile and radius, apron, base style (pedestal), material colours.
Units are metres before normalisation; the long side runs along x, the front faces +z.
"""

from __future__ import annotations

import numpy as np

from chairgen.procedural import geometry
from chairgen.procedural.palette import color_scheme

TOP_SHAPES = ("rectangular", "round", "oval")
SUPPORTS = ("four_legs", "pedestal", "trestle")
HEIGHTS = {"coffee": (0.38, 0.50), "dining": (0.70, 0.78), "bar": (0.95, 1.05)}
# The allowed values of each categorical factor (checked when a factor is overridden).
CHOICES = {"top_shape": TOP_SHAPES, "height_class": tuple(HEIGHTS), "support": SUPPORTS,
           "leg_profile": ("round", "square"), "pedestal_base": ("disc", "cross"),
           "material": ("wood", "plastic", "two_tone")}
_EXPONENTS = {"rectangular": 12.0, "round": 2.0, "oval": 2.0}
_CORNERS = (("front_left", -1, 1), ("front_right", 1, 1), ("back_left", -1, -1),
            ("back_right", 1, -1))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
  return round(float(rng.uniform(lo, hi)), 4)


def sample_factors(rng: np.random.Generator) -> dict:
  """Draws every style factor independently."""
  f: dict = {}
  f["top_shape"] = str(rng.choice(TOP_SHAPES))
  f["height_class"] = str(rng.choice(tuple(HEIGHTS)))
  f["height"] = _u(rng, *HEIGHTS[f["height_class"]])
  size = 0.85 if f["height_class"] == "bar" else 1.0
  if f["top_shape"] == "round":
    f["top_width"] = f["top_depth"] = _u(rng, 0.65, 1.25) * size
  else:
    f["top_width"] = _u(rng, 0.9, 1.9) * size
    f["top_depth"] = round(f["top_width"] * _u(rng, 0.45, 0.8), 4)
  f["top_thickness"] = _u(rng, 0.02, 0.07)
  f["support"] = str(rng.choice(SUPPORTS))
  f["leg_profile"] = str(rng.choice(("round", "square")))
  f["leg_radius"] = _u(rng, 0.018, 0.045)
  f["leg_inset"] = _u(rng, 0.03, 0.12)
  f["apron"] = bool(rng.random() < 0.5)
  f["pedestal_base"] = str(rng.choice(("disc", "cross")))
  f["material"] = str(rng.choice(("wood", "plastic", "two_tone")))
  top, _, frame = color_scheme(rng, f["material"])
  f["top_color"], f["frame_color"] = top, frame
  return f


def _outline_point(f: dict, sx: int, sz: int, pull: float = 1.0) -> np.ndarray:
  """(x, z) on the top outline in the diagonal direction (sx, sz)."""
  e = _EXPONENTS[f["top_shape"]]
  k = np.sqrt(0.5) ** (2.0 / e)
  return np.array([sx * f["top_width"] / 2 * k * pull, sz * f["top_depth"] / 2 * k * pull])


def _four_legs(f: dict, y_under: float):
  sides = 4 if f["leg_profile"] == "square" else 10
  pull = 1.0 if f["top_shape"] == "rectangular" else 0.8
  parts, feet, tops = [], {}, []
  r = f["leg_radius"]
  for name, sx, sz in _CORNERS:
    x, z = _outline_point(f, sx, sz, pull) - np.array([sx, sz]) * f["leg_inset"]
    parts.append(geometry.beam((x, y_under, z), (x, 0.0, z), r, f["frame_color"], sides, 0.8 * r))
    feet[f"foot_{name}"] = np.array([x, 0.0, z])
    tops.append((x, z))
  if f["apron"]:
    (x0, z0), (x1, _), _, (_, z1) = tops[0], tops[1], tops[2], tops[3]
    h = 0.08 + 0.03 * f["height"]
    parts.append(geometry.box((min(x0, x1) + r, y_under - h, min(z0, z1) + r),
                              (max(x0, x1) - r, y_under, max(z0, z1) - r), f["frame_color"]))
  return parts, feet


def _pedestal(f: dict, y_under: float):
  col = f["frame_color"]
  radius = 0.04 + 0.6 * f["leg_radius"]
  reach = 0.32 * min(f["top_width"], f["top_depth"]) + 0.1
  parts = [geometry.beam((0, y_under, 0), (0, 0.03, 0), radius, col, 16)]
  feet = {}
  if f["pedestal_base"] == "disc":
    outline = geometry.superellipse(reach, reach, 2.0, 32)
    parts.append(geometry.prism(outline, 0.0, 0.035, col))
    for name, sx, sz in _CORNERS:
      feet[f"foot_{name}"] = np.array([sx * reach * np.sqrt(0.5), 0.035, sz * reach * np.sqrt(0.5)])
  else:
    for name, sx, sz in _CORNERS:
      end = np.array([sx * reach * np.sqrt(0.5), 0.025, sz * reach * np.sqrt(0.5)])
      parts.append(geometry.beam((0, 0.06, 0), end, 0.035, col, 4, 0.025))
      feet[f"foot_{name}"] = end - (0, 0.025, 0)
  return parts, feet


def _trestle(f: dict, y_under: float):
  col = f["frame_color"]
  x_end = abs(_outline_point(f, 1, 1, 0.85)[0]) - f["leg_inset"]
  foot_half = 0.36 * f["top_depth"]
  post_w = 0.03 + f["leg_radius"]
  parts, feet = [], {}
  for side, sx in (("left", -1), ("right", 1)):
    x = sx * x_end
    x0, x1 = x - post_w / 2, x + post_w / 2
    parts.append(geometry.box((x0, 0.05, -post_w), (x1, y_under, post_w), col))
    parts.append(geometry.box((x0, 0.0, -foot_half), (x1, 0.05, foot_half), col))
    parts.append(geometry.box((x - post_w / 2, y_under - 0.04, -0.8 * foot_half),
                              (x + post_w / 2, y_under, 0.8 * foot_half), col))
    feet[f"foot_front_{side}"] = np.array([x, 0.05, foot_half])
    feet[f"foot_back_{side}"] = np.array([x, 0.05, -foot_half])
  y_bar = 0.45 * y_under
  parts.append(geometry.box((-x_end, y_bar - 0.03, -0.025), (x_end, y_bar + 0.03, 0.025), col))
  return parts, feet


def build(f: dict) -> tuple[geometry.Mesh, dict, dict[str, np.ndarray]]:
  """The table of these factors (`sample_factors`): (mesh in metres, factors, keypoints)."""
  e = _EXPONENTS[f["top_shape"]]
  outline = geometry.superellipse(f["top_width"] / 2, f["top_depth"] / 2, e, 40)
  y_under = f["height"] - f["top_thickness"]
  top = geometry.prism(outline, y_under, f["height"], f["top_color"])
  support = {"four_legs": _four_legs, "pedestal": _pedestal, "trestle": _trestle}[f["support"]]
  parts, feet = support(f, y_under)
  keypoints = {}
  for name, sx, sz in _CORNERS:
    x, z = _outline_point(f, sx, sz)
    keypoints[f"top_{name}"] = np.array([x, f["height"], z])
  keypoints.update({f"foot_{name}": feet[f"foot_{name}"] for name, _, _ in _CORNERS})
  return geometry.merge([top] + parts), f, keypoints
