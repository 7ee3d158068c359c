"""Offscreen OpenGL renderer (moderngl, headless EGL): RGB on white, exact masks, depth.

Shading is Lambert plus ambient under one light fixed relative to the camera (upper left,
behind the viewer), so every view of a turntable is lit alike, as in the upstream renders.
Lighting is two-sided: there is no back-face culling and each face's normal is flipped towards
the camera, so open or inconsistently wound parts shade correctly.

Mask definition. The colour pass renders with 4x MSAA into RGBA cleared to (1, 1, 1, 0); every
covered sample writes alpha 1, so after the resolve a pixel's alpha is its coverage (0, 1/4,
.., 1). `mask = alpha > 0`: a pixel belongs to the object when any of its 4 samples does.
Albedos are at most 0.9 (see `palette`), so a covered sample's colour is at most 0.9 * 255 in
every channel and a pixel with even one covered sample resolves to at most 251 < 255: the mask
is exactly the set of non-white pixels, which the tests check.

Depth is resolved with the colour: the blit copies one of each pixel's 4 depth samples (MSAA
depth cannot be averaged), converted to distance along the viewing axis, +inf where that sample
is background; so a finite depth implies the mask. A keypoint is visible when its
own depth is at most the depth at its pixel plus KEYPOINT_DEPTH_TOLERANCE (in bounding-sphere
radii: the thickest part measured from its centre line, so keypoints on a part's axis count as
on the surface).

One EGL context per Renderer; creating it takes ~0.3 s, so make one per process and reuse it.
The output is deterministic (same bytes for the same inputs, across processes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

try:
  import moderngl
except ImportError:  # the `render` extra: only building procedural data draws
  moderngl = None

from chairgen.procedural import camera
from chairgen.procedural.objects import ProceduralObject

KEYPOINT_DEPTH_TOLERANCE = 0.06
LIGHT_DIRECTION_CAMERA = (-0.45, 0.55, 0.70)  # Towards the light, camera coordinates.
AMBIENT, DIFFUSE = 0.38, 0.62
SAMPLES = 4

_VERTEX_SHADER = """
#version 330
uniform mat4 u_view;
uniform mat4 u_proj;
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
out vec3 v_position;
out vec3 v_normal;
out vec3 v_color;
void main() {
  vec4 p = u_view * vec4(in_position, 1.0);
  v_position = p.xyz;
  v_normal = mat3(u_view) * in_normal;
  v_color = in_color;
  gl_Position = u_proj * p;
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 u_light;
uniform float u_ambient;
uniform float u_diffuse;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;
out vec4 f_color;
void main() {
  vec3 n = normalize(v_normal);
  if (dot(n, v_position) > 0.0) n = -n;  // Two-sided: face the camera at the origin.
  float shade = u_ambient + u_diffuse * max(dot(n, u_light), 0.0);
  f_color = vec4(min(v_color * shade, vec3(1.0)), 1.0);
}
"""


@dataclasses.dataclass(frozen=True)
class View:
  """One rendered view; S is the image size, K the number of keypoints."""

  rgb: np.ndarray  # uint8[S, S, 3], white background.
  mask: np.ndarray  # bool[S, S].
  depth: np.ndarray  # float32[S, S], distance along the viewing axis, inf on background.
  keypoints_px: np.ndarray  # float32[K, 2] pixel (x, y), see `camera` for the convention.
  keypoints_visible: np.ndarray  # bool[K].
  azimuth_deg: float
  elevation_deg: float

  @property
  def rgba(self) -> np.ndarray:
    """uint8[S, S, 4]: RGB with alpha 255 on the mask and 0 elsewhere (the R2N2 layout)."""
    alpha = self.mask.astype(np.uint8) * 255
    return np.concatenate([self.rgb, alpha[..., None]], axis=-1)


def keypoint_visibility(xy_Kx2: np.ndarray, depth_K: np.ndarray, depth_SxS: np.ndarray,
                        tolerance: float = KEYPOINT_DEPTH_TOLERANCE) -> np.ndarray:
  """bool[K]: inside the image and not behind the rendered surface at its pixel by > tolerance."""
  size = depth_SxS.shape[0]
  cols = np.floor(xy_Kx2[:, 0]).astype(np.int64)
  rows = np.floor(xy_Kx2[:, 1]).astype(np.int64)
  inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
  surface = depth_SxS[np.clip(rows, 0, size - 1), np.clip(cols, 0, size - 1)]
  return inside & (depth_K <= surface + tolerance)


class _Targets:
  """Framebuffers for a grid of cols x rows tiles of S x S pixels (one tile per view).

  Rendering many views into one atlas needs one clear, resolve and readback instead of one per
  view (less CPU time, though rasterising the 4 samples dominates; docs/performance.md).
  """

  def __init__(self, ctx: moderngl.Context, size: int, cols: int, rows: int):
    shape = (cols * size, rows * size)
    self.msaa = ctx.framebuffer(
        color_attachments=[ctx.renderbuffer(shape, 4, samples=SAMPLES)],
        depth_attachment=ctx.depth_renderbuffer(shape, samples=SAMPLES))
    self.depth_texture = ctx.depth_texture(shape)
    self.resolved = ctx.framebuffer(color_attachments=[ctx.renderbuffer(shape, 4)],
                                    depth_attachment=self.depth_texture)


class Renderer:
  """Renders procedural objects at a fixed camera distance and field of view.

  Args:
    image_size: S, the side of the square output images in pixels.

  Not thread-safe; make one per process. Mesa's llvmpipe starts its own rasteriser threads
  unless `LP_NUM_THREADS=0` is set before the first Renderer (best when each process owns a
  core, as in tools/make_turntables.py); the output is the same either way.
  """

  MAX_ATLAS_SIDE = 512  # Pixels; larger atlases are no faster on llvmpipe (cache misses).

  def __init__(self, image_size: int):
    if not (isinstance(image_size, (int, np.integer)) and 8 <= image_size <= 4096):
      raise ValueError(f"image_size must be an integer in [8, 4096], got {image_size!r}.")
    self.image_size = int(image_size)
    if moderngl is None:
      raise ImportError(
          "The procedural renderer needs moderngl: pip install 'chairgen[render]' (and, on "
          "Debian/Ubuntu, Mesa's headless EGL: apt-get install libegl1 libegl-mesa0 "
          "libgl1-mesa-dri; tools/setup.sh does both).")
    try:
      self._ctx = moderngl.create_standalone_context(backend="egl")
    except Exception as e:  # moderngl raises bare Exceptions for missing EGL.
      raise RuntimeError(
          "Could not create a headless EGL OpenGL context. On Debian/Ubuntu install "
          "`libegl1 libegl-mesa0 libgl1-mesa-dri` (Mesa's llvmpipe runs on any CPU).") from e
    self._program = self._ctx.program(vertex_shader=_VERTEX_SHADER,
                                      fragment_shader=_FRAGMENT_SHADER)
    light = np.asarray(LIGHT_DIRECTION_CAMERA, np.float64)
    self._program["u_light"].value = tuple(light / np.linalg.norm(light))
    self._program["u_ambient"].value = AMBIENT
    self._program["u_diffuse"].value = DIFFUSE
    self._program["u_proj"].write(camera.projection_matrix().T.astype("f4").tobytes())
    self._max_cols = max(1, min(8, self.MAX_ATLAS_SIDE // self.image_size))
    self._targets: dict[tuple[int, int], _Targets] = {}
    self._cached: tuple | None = None  # (mesh id, vao, vbo, mesh)

  def _vertex_array(self, obj: ProceduralObject) -> moderngl.VertexArray:
    """Uploads the object's mesh, keeping the last one (turntables render one object often)."""
    key = id(obj.mesh)
    if self._cached is not None and self._cached[0] == key:
      return self._cached[1]
    if self._cached is not None:
      self._cached[1].release()
      self._cached[2].release()
    vbo = self._ctx.buffer(obj.mesh.interleaved().tobytes())
    vao = self._ctx.vertex_array(
        self._program, [(vbo, "3f 3f 3f", "in_position", "in_normal", "in_color")])
    self._cached = (key, vao, vbo, obj.mesh)  # Holding the mesh keeps its id unique.
    return vao

  def render(self, obj: ProceduralObject, azimuth_deg: float, elevation_deg: float) -> View:
    """Renders `obj` from the turntable camera at (azimuth, elevation) in degrees."""
    return self.render_views(obj, [(azimuth_deg, elevation_deg)])[0]

  def render_views(self, obj: ProceduralObject,
                   angles: Sequence[tuple[float, float]]) -> list[View]:
    """Renders many (azimuth, elevation) views of one object, batched into atlases."""
    per_batch = self._max_cols ** 2
    views = []
    with self._ctx:  # Make this context current: a process may hold several Renderers.
      for start in range(0, len(angles), per_batch):
        views += self._render_batch(obj, angles[start:start + per_batch])
    return views

  def _render_batch(self, obj: ProceduralObject,
                    angles: Sequence[tuple[float, float]]) -> list[View]:
    ctx, size = self._ctx, self.image_size
    cols = min(len(angles), self._max_cols)
    rows = -(-len(angles) // cols)
    if (cols, rows) not in self._targets:
      self._targets[(cols, rows)] = _Targets(ctx, size, cols, rows)
    targets = self._targets[(cols, rows)]
    vao = self._vertex_array(obj)
    ctx.enable(moderngl.DEPTH_TEST)
    ctx.disable(moderngl.CULL_FACE)
    views = [camera.view_matrix(az, el).T.astype("f4").tobytes() for az, el in angles]
    # Tile k sits at column k % cols and row k // cols counted from the top of the atlas.
    viewports = [((k % cols) * size, (rows - 1 - k // cols) * size, size, size)
                 for k in range(len(angles))]

    whole = (0, 0, cols * size, rows * size)
    targets.msaa.use()
    targets.msaa.clear(1.0, 1.0, 1.0, 0.0, depth=1.0, viewport=whole)
    for view, viewport in zip(views, viewports):
      ctx.viewport = viewport
      self._program["u_view"].write(view)
      vao.render(moderngl.TRIANGLES)
    # Resolves colour (average of the samples) and copies one depth sample per pixel.
    ctx.copy_framebuffer(targets.resolved, targets.msaa)
    shape = (rows * size, cols * size)
    rgba = np.frombuffer(targets.resolved.read(components=4), np.uint8).reshape(*shape, 4)[::-1]
    depth_all = np.frombuffer(targets.depth_texture.read(), np.float32).reshape(shape)[::-1]

    points = obj.keypoint_array()
    out = []
    for k, (az, el) in enumerate(angles):
      r, c = (k // cols) * size, (k % cols) * size
      tile = rgba[r:r + size, c:c + size]
      depth = camera.linear_depth(depth_all[r:r + size, c:c + size])
      xy, kp_depth = camera.project(points, az, el, size)
      out.append(View(
          rgb=np.ascontiguousarray(tile[..., :3]), mask=tile[..., 3] > 0, depth=depth,
          keypoints_px=xy, keypoints_visible=keypoint_visibility(xy, kp_depth, depth),
          azimuth_deg=float(az), elevation_deg=float(el)))
    return out

  def release(self) -> None:
    """Frees the GL context (also done when the process exits)."""
    self._ctx.release()
