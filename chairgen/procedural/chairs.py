"""Parametric chairs: seat, back, legs, optional armrests and stretchers, per-part colours.

Independent style factors (all stored in the factors dict): seat shape, seat width and depth,
seat height, seat thickness, back style, back height, back tilt, back top shape, leg style,
leg profile, leg thickness, splay, armrests, stretchers and the material scheme with its three
part colours. Units are metres before normalisation; the chair faces +z.
"""

from __future__ import annotations

import numpy as np

from chairgen.procedural import geometry
from chairgen.procedural.palette import color_scheme

SEAT_SHAPES = ("rectangular", "rounded", "round", "trapezoid")
BACK_STYLES = ("solid", "slatted", "spindle", "low", "tilted")
LEG_STYLES = ("four_straight", "four_splayed", "three_legs", "swivel", "sled")
MATERIALS = ("wood", "upholstered", "plastic", "office", "two_tone")
# The allowed values of each categorical factor (checked when a factor is overridden).
CHOICES = {"seat_shape": SEAT_SHAPES, "back_style": BACK_STYLES, "back_top": ("flat", "rounded"),
           "leg_style": LEG_STYLES, "leg_profile": ("round", "square"), "material": MATERIALS}

_CASTER_COLOR = (0.08, 0.08, 0.08)
_CORNER_NAMES = ("front_left", "front_right", "back_left", "back_right")
# (superellipse exponent, taper, how far towards the corner the legs sit) per seat shape.
_SEAT_OUTLINES = {
    "rectangular": (10.0, 0.0, 1.0),
    "rounded": (3.5, 0.0, 0.86),
    "round": (2.0, 0.0, 0.72),
    "trapezoid": (10.0, 0.22, 1.0),
}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
  return round(float(rng.uniform(lo, hi)), 4)


def sample_factors(rng: np.random.Generator) -> dict:
  """Draws every style factor independently; the mesh is a pure function of these."""
  f: dict = {}
  f["seat_shape"] = str(rng.choice(SEAT_SHAPES))
  f["seat_width"] = _u(rng, 0.40, 0.58)
  f["seat_depth"] = f["seat_width"] if f["seat_shape"] == "round" else _u(rng, 0.38, 0.54)
  f["seat_height"] = _u(rng, 0.40, 0.50)
  f["seat_thickness"] = _u(rng, 0.02, 0.09)
  f["back_style"] = str(rng.choice(BACK_STYLES))
  f["back_height"] = _u(rng, 0.12, 0.22) if f["back_style"] == "low" else _u(rng, 0.32, 0.62)
  f["back_tilt_deg"] = _u(rng, 18, 32) if f["back_style"] == "tilted" else _u(rng, 0, 12)
  f["back_top"] = str(rng.choice(("flat", "rounded")))
  f["back_thickness"] = _u(rng, 0.018, 0.06)
  f["back_bars"] = int(rng.integers(2, 6))  # Slats or spindles.
  f["leg_style"] = str(rng.choice(LEG_STYLES))
  f["leg_profile"] = str(rng.choice(("round", "square")))
  f["leg_radius"] = _u(rng, 0.011, 0.026)
  f["leg_taper"] = _u(rng, 0.6, 1.0)
  f["leg_inset"] = _u(rng, 0.015, 0.06)
  f["splay"] = _u(rng, 0.04, 0.11)
  f["armrests"] = bool(rng.random() < 0.35)
  f["armrest_height"] = _u(rng, 0.16, 0.26)
  f["stretchers"] = bool(rng.random() < 0.4)
  f["material"] = str(rng.choice(MATERIALS))
  seat, back, frame = color_scheme(rng, f["material"])
  f["seat_color"], f["back_color"], f["frame_color"] = seat, back, frame
  return f


def _seat_point(f: dict, sx: float, sz: float, pull: float = 1.0) -> np.ndarray:
  """(x, z) on the seat outline towards corner (sx, sz) in {-1, 1}^2, scaled by `pull`."""
  exponent, taper, _ = _SEAT_OUTLINES[f["seat_shape"]]
  c = s = np.sqrt(0.5)
  x = f["seat_width"] / 2 * c ** (2.0 / exponent)
  z = f["seat_depth"] / 2 * s ** (2.0 / exponent)
  x *= 1.0 - taper * (0.5 - 0.5 * sz * z / (f["seat_depth"] / 2))
  return np.array([sx * x * pull, sz * z * pull])


def _leg_tops(f: dict) -> dict[str, np.ndarray]:
  """(x, z) where the legs meet the seat, keyed front_left, front_right, back_left, back_right."""
  _, _, reach = _SEAT_OUTLINES[f["seat_shape"]]
  out = {}
  for name, sx, sz in (("front_left", -1, 1), ("front_right", 1, 1),
                       ("back_left", -1, -1), ("back_right", 1, -1)):
    corner = _seat_point(f, sx, sz, reach)
    out[name] = corner - np.array([sx, sz]) * f["leg_inset"]
  return out


def _legs(f: dict) -> tuple[list[geometry.Mesh], dict[str, np.ndarray]]:
  """Leg meshes and the leg-tip keypoints (bottom centre of the part touching the floor)."""
  y_top = f["seat_height"] - f["seat_thickness"]
  r, col = f["leg_radius"], f["frame_color"]
  sides = 4 if f["leg_profile"] == "square" else 10
  tops = _leg_tops(f)
  style = f["leg_style"]
  parts, tips = [], {}

  def rod(top_xz, bottom_xz, radius=r, taper=f["leg_taper"]):
    p0 = (top_xz[0], y_top, top_xz[1])
    p1 = (bottom_xz[0], 0.0, bottom_xz[1])
    parts.append(geometry.beam(p0, p1, radius, col, sides, radius * taper))
    return np.array(p1)

  if style in ("four_straight", "four_splayed"):
    splay = f["splay"] if style == "four_splayed" else 0.0
    for name, top in tops.items():
      direction = np.sign(top) if style == "four_splayed" else np.zeros(2)
      tips[f"leg_{name}"] = rod(top, top + splay * direction)
    if f["stretchers"]:
      h = 0.35 * y_top
      at = {k: np.array(v)[[0, 2]] for k, v in tips.items()}
      mid = {k: (1 - h / y_top) * at[k] + (h / y_top) * tops[k[4:]] for k in at}
      for a, b in (("front_left", "back_left"), ("front_right", "back_right")):
        pa, pb = mid[f"leg_{a}"], mid[f"leg_{b}"]
        parts.append(geometry.beam((pa[0], h, pa[1]), (pb[0], h, pb[1]), 0.6 * r, col, sides))
      left = (mid["leg_front_left"] + mid["leg_back_left"]) / 2
      right = (mid["leg_front_right"] + mid["leg_back_right"]) / 2
      parts.append(
          geometry.beam((left[0], h, left[1]), (right[0], h, right[1]), 0.6 * r, col, sides))
  elif style == "three_legs":
    front_l, front_r = tops["front_left"], tops["front_right"]
    back = np.array([0.0, (tops["back_left"][1] + tops["back_right"][1]) / 2])
    for name, top in (("front_left", front_l), ("front_right", front_r)):
      tips[f"leg_{name}"] = rod(top, top + f["splay"] * np.sign(top))
    tip = rod(back, back + np.array([0.0, -1.5 * f["splay"]]))
    tips["leg_back_left"] = tips["leg_back_right"] = tip
  elif style == "swivel":
    hub_y, arm_y, reach = 0.12, 0.075, 0.27 + 0.4 * f["splay"]
    parts.append(geometry.box((-0.08, y_top - 0.05, -0.08), (0.08, y_top, 0.08), col))
    parts.append(geometry.beam((0, y_top - 0.05, 0), (0, hub_y, 0), 0.028, col, 12))
    feet = []
    for k in range(5):
      a = 2 * np.pi * k / 5  # One foot points straight forward.
      foot = np.array([reach * np.sin(a), arm_y, reach * np.cos(a)])
      parts.append(geometry.beam((0, hub_y, 0), foot, 0.02, col, 6, 0.012))
      caster = foot - (0, 0.045, 0)
      parts.append(geometry.beam(foot, caster, 0.018, _CASTER_COLOR, 8))
      feet.append(caster)
    feet = np.array(feet)
    for name, d in (("front_left", (-1, 1)), ("front_right", (1, 1)),
                    ("back_left", (-1, -1)), ("back_right", (1, -1))):
      score = feet[:, 0] * d[0] + feet[:, 2] * d[1]
      tips[f"leg_{name}"] = feet[int(np.argmax(score))]
  elif style == "sled":
    tube = 0.6 * r + 0.004
    for side, (front, back) in (("left", (tops["front_left"], tops["back_left"])),
                                ("right", (tops["front_right"], tops["back_right"]))):
      f_floor = np.array([front[0], tube, front[1] + f["splay"]])
      b_floor = np.array([back[0], tube, back[1] - 0.3 * f["splay"]])
      parts.append(geometry.beam((front[0], y_top, front[1]), f_floor, tube, col, 10))
      parts.append(geometry.beam(f_floor, b_floor, tube, col, 10))
      parts.append(geometry.beam((back[0], y_top, back[1]), b_floor, tube, col, 10))
      tips[f"leg_front_{side}"] = f_floor - (0, tube, 0)
      tips[f"leg_back_{side}"] = b_floor - (0, tube, 0)
  else:
    raise ValueError(f"Unknown leg style {style!r}.")
  return parts, tips


def _back(f: dict) -> tuple[list[geometry.Mesh], dict[str, np.ndarray]]:
  """Back meshes (built upright, then tilted about the seat's back edge) and top corners."""
  seat_top = f["seat_height"]
  back_edge = _seat_point(f, 1, -1)
  half_w = 0.92 * abs(back_edge[0])
  z_back = back_edge[1]
  t = f["back_thickness"]
  z0, z1 = z_back, z_back + t
  height = f["back_height"]
  y_lo, y_hi = seat_top - 0.5 * f["seat_thickness"], seat_top + height
  col, frame = f["back_color"], f["frame_color"]
  parts = []
  style = f["back_style"]

  def panel(x0, x1, y0, y1, color, rounded):
    if rounded:
      # Rectangle whose top is a half superellipse rising by 15% of the width.
      a = np.linspace(0, np.pi, 13)
      rise = 0.15 * (x1 - x0)
      top = np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(a),
                      y1 - rise + rise * np.sin(a) ** 0.5], 1)
      outline = np.concatenate([[[x1, y0]], top, [[x0, y0]]])
      return geometry.extrude_z(outline, z0, z1, color)
    return geometry.box((x0, y0, z0), (x1, y1, z1), color)

  if style in ("solid", "low", "tilted"):
    parts.append(panel(-half_w, half_w, y_lo, y_hi, col, f["back_top"] == "rounded"))
  else:
    post = max(f["leg_radius"], 0.5 * t)
    zc = (z0 + z1) / 2
    for sx in (-1, 1):
      x = sx * (half_w - post)
      parts.append(geometry.beam((x, y_lo, zc), (x, y_hi, zc), post, frame, 8))
    rail_h = 0.12 * height + 0.02
    parts.append(geometry.box((-half_w, y_hi - rail_h, z0), (half_w, y_hi, z1), col))
    n = f["back_bars"]
    if style == "slatted":
      slat_top = y_hi - rail_h
      for k in range(n - 1):
        y = slat_top - (k + 1) * (height * 0.55) / n
        parts.append(geometry.box((-half_w + post, y - 0.5 * rail_h, z0 + 0.2 * t),
                                  (half_w - post, y + 0.2 * rail_h, z1 - 0.2 * t), col))
    else:  # spindle
      for k in range(n + 1):
        x = -half_w + post + (k + 1) * (2 * (half_w - post)) / (n + 2)
        parts.append(geometry.beam((x, seat_top, zc), (x, y_hi - rail_h, zc),
                                   0.35 * post + 0.004, col, 8))
  pivot = (0.0, seat_top, z_back)
  tilt = np.deg2rad(f["back_tilt_deg"])
  parts = [geometry.rotate_x(p, tilt, pivot) for p in parts]
  corners = np.array([[-half_w, y_hi, (z0 + z1) / 2], [half_w, y_hi, (z0 + z1) / 2]])
  if style not in ("slatted", "spindle") and f["back_top"] == "rounded":
    corners[:, 1] -= 0.15 * 2 * half_w  # The shoulders of the rounded top.
  corners = geometry.rotate_x_points(corners, tilt, pivot)
  return parts, {"back_top_left": corners[0], "back_top_right": corners[1]}


def _arms(f: dict) -> tuple[list[geometry.Mesh], dict[str, np.ndarray]]:
  """Armrests: a bar on a front and a rear support, on both sides."""
  front = _seat_point(f, 1, 1)
  back = _seat_point(f, 1, -1)
  y = f["seat_height"] + f["armrest_height"]
  w, h = 0.05, 0.025
  parts, ends = [], {}
  for side, sx in (("left", -1), ("right", 1)):
    x = sx * 0.95 * min(abs(front[0]), abs(back[0]) / 0.92)
    z_front, z_back = 0.75 * front[1], back[1] - 0.02
    for z in (0.6 * front[1], z_back + 0.04):  # Front and rear supports.
      parts.append(geometry.beam((x, f["seat_height"] - 0.01, z), (x, y, z),
                                 0.6 * f["leg_radius"] + 0.005, f["frame_color"], 8))
    parts.append(geometry.box((x - w / 2, y, z_back), (x + w / 2, y + h, z_front), f["back_color"]))
    ends[f"armrest_{side}_end"] = np.array([x, y + h, z_front])
  return parts, ends


def build(f: dict) -> tuple[geometry.Mesh, dict, dict[str, np.ndarray]]:
  """The chair of these factors (`sample_factors`): (mesh in metres, factors, keypoints)."""
  exponent, taper, _ = _SEAT_OUTLINES[f["seat_shape"]]
  outline = geometry.superellipse(f["seat_width"] / 2, f["seat_depth"] / 2, exponent, 32, taper)
  seat = geometry.prism(outline, f["seat_height"] - f["seat_thickness"], f["seat_height"],
                        f["seat_color"])
  leg_parts, tips = _legs(f)
  back_parts, back_kps = _back(f)
  parts = [seat] + leg_parts + back_parts
  keypoints = {f"leg_{name}": tips[f"leg_{name}"] for name in _CORNER_NAMES}  # Fixed order.
  for name, sx, sz in (("front_left", -1, 1), ("front_right", 1, 1),
                       ("back_left", -1, -1), ("back_right", 1, -1)):
    x, z = _seat_point(f, sx, sz)
    keypoints[f"seat_{name}"] = np.array([x, f["seat_height"], z])
  keypoints.update(back_kps)
  if f["armrests"]:
    arm_parts, ends = _arms(f)
    parts += arm_parts
    keypoints.update(ends)
  return geometry.merge(parts), f, keypoints
