"""Triangle-soup meshes and the few primitives the procedural objects are built from.

Meshes are flat-shaded triangle soups (no index buffer): every triangle owns its three
vertices, so a per-face normal and a per-part colour can be stored per vertex and uploaded to
the GPU as one interleaved buffer. Object coordinates: x to the object's right, y up, z towards
the object's front (the camera at azimuth 0 sits on +z).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

Color = tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Mesh:
  """A triangle soup: `positions_Nx3`, `normals_Nx3`, `colors_Nx3` (float32, N = 3 * faces)."""

  positions: np.ndarray
  normals: np.ndarray
  colors: np.ndarray

  @property
  def num_triangles(self) -> int:
    return self.positions.shape[0] // 3

  def interleaved(self) -> np.ndarray:
    """float32[N, 9] rows of (position, normal, colour), the renderer's vertex format."""
    return np.concatenate([self.positions, self.normals, self.colors], axis=1).astype(np.float32)

  def transformed(self, scale: float, offset: np.ndarray) -> "Mesh":
    """Returns `scale * (p + offset)`; normals are unchanged (uniform scale)."""
    positions = (self.positions + np.asarray(offset, np.float32)) * np.float32(scale)
    return Mesh(positions.astype(np.float32), self.normals, self.colors)


def triangles(tris_Tx3x3: np.ndarray, color: Color) -> Mesh:
  """A mesh from explicit triangles, with face normals from the vertex order (right hand)."""
  tris = np.asarray(tris_Tx3x3, np.float64).reshape(-1, 3, 3)
  normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
  length = np.linalg.norm(normals, axis=1, keepdims=True)
  normals = normals / np.maximum(length, 1e-12)
  keep = length[:, 0] > 1e-12  # Degenerate triangles would get an arbitrary normal.
  tris, normals = tris[keep], normals[keep]
  positions = tris.reshape(-1, 3).astype(np.float32)
  normals = np.repeat(normals, 3, axis=0).astype(np.float32)
  colors = np.broadcast_to(np.asarray(color, np.float32), positions.shape).copy()
  return Mesh(positions, normals, colors)


def merge(meshes: Sequence[Mesh]) -> Mesh:
  """Concatenates meshes into one triangle soup."""
  return Mesh(
      np.concatenate([m.positions for m in meshes]),
      np.concatenate([m.normals for m in meshes]),
      np.concatenate([m.colors for m in meshes]),
  )


def _loft(bottom_Nx3: np.ndarray, top_Nx3: np.ndarray, color: Color, cap: bool = True) -> Mesh:
  """Closed solid between two convex rings with corresponding vertices (fan-capped)."""
  n = len(bottom_Nx3)
  nxt = np.roll(np.arange(n), -1)
  b, t, b1, t1 = bottom_Nx3, top_Nx3, bottom_Nx3[nxt], top_Nx3[nxt]
  tris = [np.stack([b, b1, t1], 1), np.stack([b, t1, t], 1)]
  if cap:
    cb, ct = bottom_Nx3.mean(0), top_Nx3.mean(0)
    tris.append(np.stack([np.broadcast_to(cb, b.shape), b1, b], 1))
    tris.append(np.stack([np.broadcast_to(ct, t.shape), t, t1], 1))
  return triangles(np.concatenate(tris), color)


def prism(outline_xz: np.ndarray, y0: float, y1: float, color: Color) -> Mesh:
  """Vertical prism: a convex (x, z) outline extruded from height y0 to y1."""
  outline = np.asarray(outline_xz, np.float64)
  bottom = np.stack([outline[:, 0], np.full(len(outline), y0), outline[:, 1]], 1)
  top = bottom.copy()
  top[:, 1] = y1
  return _loft(bottom, top, color)


def box(lo: Sequence[float], hi: Sequence[float], color: Color) -> Mesh:
  """Axis-aligned box between corners `lo` and `hi`."""
  (x0, y0, z0), (x1, y1, z1) = lo, hi
  return prism(np.array([[x0, z1], [x1, z1], [x1, z0], [x0, z0]]), y0, y1, color)


def _perpendicular_frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Two unit vectors orthogonal to `axis`; u follows world x where possible (stable boxes)."""
  ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
  u = ref - axis * np.dot(ref, axis)
  u /= np.linalg.norm(u)
  return u, np.cross(axis, u)


def beam(p0: Sequence[float], p1: Sequence[float], radius: float, color: Color,
         sides: int = 10, radius1: float | None = None) -> Mesh:
  """A rod from p0 to p1: round (`sides` >= 6) or square (`sides` == 4, faces along x).

  `radius1` tapers the rod towards p1 (legs that thin towards the floor).
  """
  p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
  axis = p1 - p0
  axis /= np.linalg.norm(axis)
  u, v = _perpendicular_frame(axis)
  phase = np.pi / sides if sides == 4 else 0.0
  angles = phase + 2 * np.pi * np.arange(sides) / sides
  # Square rods use the circumradius so that their half-width equals `radius`.
  scale = np.sqrt(2.0) if sides == 4 else 1.0
  ring = (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v) * scale
  r1 = radius if radius1 is None else radius1
  return _loft(p0 + radius * ring, p1 + r1 * ring, color)


def extrude_x(profile_zy: np.ndarray, half_width_bottom: float, half_width_top: float | None,
              color: Color) -> Mesh:
  """A solid from a convex side profile in (z, y), extruded symmetrically across x.

  The half-width varies linearly with height from `half_width_bottom` (at the profile's lowest
  y) to `half_width_top` (at its highest y): car cabins taper towards the roof.
  """
  prof = np.asarray(profile_zy, np.float64)
  z, y = prof[:, 0], prof[:, 1]
  top = half_width_bottom if half_width_top is None else half_width_top
  span = max(y.max() - y.min(), 1e-9)
  hw = half_width_bottom + (top - half_width_bottom) * (y - y.min()) / span
  left = np.stack([-hw, y, z], 1)
  right = np.stack([hw, y, z], 1)
  return _loft(left, right, color)


def superellipse(half_x: float, half_z: float, exponent: float, n: int = 24,
                 taper: float = 0.0) -> np.ndarray:
  """float[n, 2] convex outline |x/a|^e + |z/b|^e = 1 (winding is irrelevant: two-sided light).

  exponent 2 is an ellipse, large exponents approach a rectangle with rounded corners.
  `taper` > 0 narrows the back (-z) of the outline (seats that are wider at the front).
  """
  t = 2 * np.pi * (np.arange(n) + 0.5) / n
  c, s = np.cos(t), np.sin(t)
  x = half_x * np.sign(c) * np.abs(c) ** (2.0 / exponent)
  z = half_z * np.sign(s) * np.abs(s) ** (2.0 / exponent)
  x = x * (1.0 - taper * (0.5 - 0.5 * z / half_z))
  return np.stack([x, z], 1)


def rotate_x(mesh: Mesh, angle_rad: float, pivot: Sequence[float]) -> Mesh:
  """Rotates a mesh about the x axis through `pivot` (positive tilts +y towards -z)."""
  c, s = np.cos(angle_rad), np.sin(angle_rad)
  rot = np.array([[1, 0, 0], [0, c, s], [0, -s, c]], np.float32)
  pivot = np.asarray(pivot, np.float32)
  positions = (mesh.positions - pivot) @ rot.T + pivot
  normals = mesh.normals @ rot.T
  return Mesh(positions.astype(np.float32), normals.astype(np.float32), mesh.colors)


def rotate_x_points(points_Nx3: np.ndarray, angle_rad: float, pivot: Sequence[float]) -> np.ndarray:
  """The point version of `rotate_x`, for keypoints that ride on a rotated part."""
  c, s = np.cos(angle_rad), np.sin(angle_rad)
  rot = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
  pivot = np.asarray(pivot, np.float64)
  return (np.asarray(points_Nx3, np.float64) - pivot) @ rot.T + pivot


def extrude_z(outline_xy: np.ndarray, z0: float, z1: float, color: Color) -> Mesh:
  """A panel: a convex (x, y) outline extruded from depth z0 to z1 (chair backs)."""
  outline = np.asarray(outline_xy, np.float64)
  front = np.stack([outline[:, 0], outline[:, 1], np.full(len(outline), z1)], 1)
  back = front.copy()
  back[:, 2] = z0
  return _loft(back, front, color)
