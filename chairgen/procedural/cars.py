"""Parametric cars: sedan, hatchback, SUV and pickup proportions, a glass cabin, four wheels.

Factors: body type, length, width, ground clearance, body height, cabin height, wheel radius
and width, body colour, hubcap colour. Units are metres before normalisation; the car's front
faces +z, so azimuth 0 looks at the bonnet.
"""

from __future__ import annotations

import numpy as np

from chairgen.procedural import geometry
from chairgen.procedural.palette import CAR_PAINT, METAL, pick

BODY_TYPES = ("sedan", "hatchback", "suv", "pickup")
# The allowed values of each categorical factor (checked when a factor is overridden).
CHOICES = {"body_type": BODY_TYPES}
GLASS = (0.16, 0.19, 0.24)
TYRE = (0.07, 0.07, 0.07)
LIGHT = (0.90, 0.88, 0.72)
TAIL_LIGHT = (0.75, 0.08, 0.06)

# Per body type: length range, clearance, body height, cabin height, and the cabin profile as
# fractions of the length: (bottom front, roof front, roof back, bottom back).
_PROPORTIONS = {
    "sedan": ((4.3, 5.0), (0.14, 0.18), (0.55, 0.65), (0.42, 0.50), (0.24, 0.05, -0.22, -0.34)),
    "hatchback": ((3.8, 4.3), (0.14, 0.18), (0.55, 0.65), (0.45, 0.53), (0.22, 0.03, -0.38, -0.48)),
    "suv": ((4.4, 5.0), (0.22, 0.30), (0.68, 0.80), (0.50, 0.60), (0.22, 0.07, -0.45, -0.49)),
    "pickup": ((5.0, 5.6), (0.24, 0.32), (0.65, 0.78), (0.50, 0.58), (0.20, 0.07, -0.10, -0.12)),
}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
  return round(float(rng.uniform(lo, hi)), 4)


def sample_factors(rng: np.random.Generator) -> dict:
  f: dict = {"body_type": str(rng.choice(BODY_TYPES))}
  length, clearance, body_h, cabin_h, _ = _PROPORTIONS[f["body_type"]]
  f["length"] = _u(rng, *length)
  f["width"] = _u(rng, 1.7, 1.95)
  f["clearance"] = _u(rng, *clearance)
  f["body_height"] = _u(rng, *body_h)
  f["cabin_height"] = _u(rng, *cabin_h)
  f["cabin_shift"] = _u(rng, -0.04, 0.04)
  f["wheel_radius"] = _u(rng, 0.30, 0.36) + (0.04 if f["body_type"] in ("suv", "pickup") else 0.0)
  f["wheel_width"] = _u(rng, 0.18, 0.26)
  f["wheelbase_fraction"] = _u(rng, 0.56, 0.64)
  f["body_color"] = pick(rng, CAR_PAINT)
  f["hubcap_color"] = pick(rng, METAL, jitter=0.02)
  return f


def _lower_body(f: dict, z_front: float, z_back: float) -> geometry.Mesh:
  """Convex side profile with a sloped nose and tail, extruded across the width."""
  y0, h = f["clearance"], f["body_height"]
  nose = 0.06 * f["length"]
  profile = [
      (z_front - 0.02, y0), (z_front, y0 + 0.45 * h), (z_front - nose, y0 + h),
      (z_back + 0.3 * nose, y0 + h), (z_back, y0 + 0.55 * h), (z_back + 0.02, y0),
  ]
  half_w = f["width"] / 2
  return geometry.extrude_x(np.array(profile), half_w, 0.97 * half_w, f["body_color"])


def build(f: dict) -> tuple[geometry.Mesh, dict, dict[str, np.ndarray]]:
  """The car of these factors (`sample_factors`): (mesh in metres, factors, keypoints)."""
  half_l, half_w = f["length"] / 2, f["width"] / 2
  y_belt = f["clearance"] + f["body_height"]
  y_roof = y_belt + f["cabin_height"]
  body = f["body_color"]
  parts = []
  if f["body_type"] == "pickup":
    bed_front = -0.13 * f["length"]
    parts.append(_lower_body(f, half_l, bed_front - 0.01))
    wall, bed_floor = 0.06, f["clearance"] + 0.35 * f["body_height"]
    parts.append(
        geometry.box((-half_w, f["clearance"], -half_l), (half_w, bed_floor, bed_front), body))
    for sx in (-1, 1):
      x0 = sx * half_w
      parts.append(geometry.box((min(x0, x0 - sx * wall), bed_floor, -half_l),
                                (max(x0, x0 - sx * wall), y_belt, bed_front), body))
    parts.append(  # Tailgate.
        geometry.box((-half_w, bed_floor, -half_l), (half_w, y_belt, -half_l + wall), body))
  else:
    parts.append(_lower_body(f, half_l, -half_l))

  fz = np.array(_PROPORTIONS[f["body_type"]][4]) + f["cabin_shift"]
  fz[[0, 3]] -= f["cabin_shift"]  # Shift only the roof along the body.
  bottom_front, roof_front, roof_back, bottom_back = fz * f["length"]
  cabin = np.array([(bottom_front, y_belt - 0.05), (roof_front, y_roof),
                    (roof_back, y_roof), (bottom_back, y_belt - 0.05)])
  roof_half_w = 0.82 * half_w
  parts.append(geometry.extrude_x(cabin, 0.96 * half_w, roof_half_w, GLASS))
  roof_top = y_roof + 0.03
  parts.append(geometry.box((-roof_half_w - 0.01, y_roof - 0.03, roof_back - 0.01),
                            (roof_half_w + 0.01, roof_top, roof_front + 0.01), body))

  # Lights: two boxes on the nose, two on the tail.
  y_light = f["clearance"] + 0.55 * f["body_height"]
  for sx in (-1, 1):
    x = sx * 0.72 * half_w
    parts.append(geometry.box((x - 0.16, y_light - 0.05, half_l - 0.1),
                              (x + 0.16, y_light + 0.05, half_l - 0.015 + 0.02), LIGHT))
    parts.append(geometry.box((x - 0.14, y_light - 0.05, -half_l - 0.01),
                              (x + 0.14, y_light + 0.06, -half_l + 0.1), TAIL_LIGHT))
  grille_bottom = f["clearance"] + 0.2 * f["body_height"]
  parts.append(geometry.box((-0.35 * half_w, grille_bottom, half_l - 0.06),
                            (0.35 * half_w, y_light - 0.06, half_l + 0.01), GLASS))

  keypoints = {}
  r, w = f["wheel_radius"], f["wheel_width"]
  axle = f["wheelbase_fraction"] * half_l
  for front, z in (("front", axle), ("back", -axle)):
    for side, sx in (("left", -1), ("right", 1)):
      outer = sx * (half_w + 0.02)
      inner = outer - sx * w
      parts.append(geometry.beam((inner, r, z), (outer, r, z), r, TYRE, 20))
      cap = outer + sx * 0.01
      parts.append(
          geometry.beam((outer - sx * 0.01, r, z), (cap, r, z), 0.6 * r, f["hubcap_color"], 20))
      keypoints[f"wheel_{front}_{side}"] = np.array([cap, r, z])
  for front, z in (("front", roof_front), ("back", roof_back)):
    for side, sx in (("left", -1), ("right", 1)):
      keypoints[f"roof_{front}_{side}"] = np.array([sx * roof_half_w, roof_top, z])
  return geometry.merge(parts), f, keypoints
