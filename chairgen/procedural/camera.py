"""The fixed turntable camera: a pinhole looking at the origin from a fixed distance.

Objects are normalised to fit the unit sphere (see `objects.normalise`), so with the distance
and field of view below no view ever clips an object. Azimuth 0 puts the camera on the +z axis,
in front of the object; azimuth grows counter-clockwise seen from above (azimuth 90 puts the
camera on +x, the object's right); elevation is the camera's angle above the ground plane.

Pixel convention: (x, y) with x to the right and y down, and the top-left pixel covering
[0, 1) x [0, 1), so pixel (row, col) holds the point (col + 0.5, row + 0.5).
"""

from __future__ import annotations

import numpy as np

CAMERA_DISTANCE = 2.5  # In units of the object's bounding-sphere radius.
FIELD_OF_VIEW_DEG = 50.0  # Full angle, the same horizontally and vertically (square images).
NEAR, FAR = 1.0, 4.0  # Clip planes around the unit sphere at CAMERA_DISTANCE.


def camera_position(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
  """float64[3] camera centre in object coordinates."""
  az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
  return CAMERA_DISTANCE * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])


def view_matrix(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
  """float64[4, 4] object -> camera coordinates (OpenGL: camera looks down its -z axis).

  The camera's right axis stays horizontal: (cos az, 0, -sin az); its up axis completes the
  right-handed frame. Written out in closed form (no cross products): it is on the hot path.
  """
  az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
  ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(el), np.sin(el)
  back = np.array([ce * sa, se, ce * ca])  # Unit vector from the origin to the camera.
  right = np.array([ca, 0.0, -sa])
  up = np.array([-se * sa, ce, -se * ca])
  view = np.eye(4)
  view[0, :3], view[1, :3], view[2, :3] = right, up, back
  view[2, 3] = -CAMERA_DISTANCE
  return view


def projection_matrix() -> np.ndarray:
  """float64[4, 4] OpenGL perspective projection for FIELD_OF_VIEW_DEG, NEAR and FAR."""
  f = 1.0 / np.tan(np.deg2rad(FIELD_OF_VIEW_DEG) / 2)
  proj = np.zeros((4, 4))
  proj[0, 0] = proj[1, 1] = f
  proj[2, 2] = (FAR + NEAR) / (NEAR - FAR)
  proj[2, 3] = 2 * FAR * NEAR / (NEAR - FAR)
  proj[3, 2] = -1.0
  return proj


def linear_depth(depth_buffer: np.ndarray) -> np.ndarray:
  """Converts window depth in [0, 1] to distance along the viewing axis; 1.0 (cleared) -> inf."""
  z_ndc = 2.0 * depth_buffer.astype(np.float64) - 1.0
  depth = (2.0 * NEAR * FAR / (FAR + NEAR - z_ndc * (FAR - NEAR))).astype(np.float32)
  depth[depth_buffer >= 1.0] = np.inf
  return depth


def project(points_Nx3: np.ndarray, azimuth_deg: float, elevation_deg: float,
            image_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Projects object points: returns (xy float32[N, 2] pixels, depth float32[N] along the axis)."""
  pts = np.asarray(points_Nx3, np.float64).reshape(-1, 3)
  view = view_matrix(azimuth_deg, elevation_deg)
  cam = pts @ view[:3, :3].T + view[:3, 3]
  depth = -cam[:, 2]
  f = 1.0 / np.tan(np.deg2rad(FIELD_OF_VIEW_DEG) / 2)
  half = image_size / 2.0
  x = half * (1.0 + f * cam[:, 0] / depth)
  y = half * (1.0 - f * cam[:, 1] / depth)
  return np.stack([x, y], 1).astype(np.float32), depth.astype(np.float32)
