"""Renderer: exact masks, determinism, keypoint projection and visibility, framing."""

import hashlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from chairgen import procedural

SIZE = 32
ANGLES = [(az, el) for el in (0, 20, 40, 90) for az in (0, 35, 100, 190, 290)]


@pytest.fixture(scope="module")
def renderer():
  return procedural.Renderer(SIZE)


def _views(renderer, family, index):
  return renderer.render_views(procedural.make_object(family, index), ANGLES)


def test_view_shapes_and_dtypes(renderer):
  obj = procedural.make_object("chairs", 0)
  view = renderer.render(obj, 30.0, 20.0)
  assert view.rgb.shape == (SIZE, SIZE, 3) and view.rgb.dtype == np.uint8
  assert view.mask.shape == (SIZE, SIZE) and view.mask.dtype == np.bool_
  assert view.depth.shape == (SIZE, SIZE) and view.depth.dtype == np.float32
  k = len(obj.keypoints)
  assert view.keypoints_px.shape == (k, 2) and view.keypoints_px.dtype == np.float32
  assert view.keypoints_visible.shape == (k,) and view.keypoints_visible.dtype == np.bool_
  assert view.rgba.shape == (SIZE, SIZE, 4)
  np.testing.assert_array_equal(view.rgba[..., 3] == 255, view.mask)


@pytest.mark.parametrize("family", procedural.FAMILIES)
def test_mask_is_exactly_the_non_white_pixels(renderer, family):
  for index in range(4):
    for view in _views(renderer, family, index):
      non_white = (view.rgb != 255).any(-1)
      np.testing.assert_array_equal(view.mask, non_white)
      assert 0.03 < view.mask.mean() < 0.9  # An object is there and fits.
      # Never clipped: the border is background in every view.
      assert not (view.mask[0].any() or view.mask[-1].any()
                  or view.mask[:, 0].any() or view.mask[:, -1].any())


def test_depth_lies_inside_the_unit_sphere(renderer):
  for view in _views(renderer, "tables", 1):
    finite = np.isfinite(view.depth)
    assert finite.any()
    d = view.depth[finite]
    assert (d > procedural.CAMERA_DISTANCE - 1 - 1e-4).all()
    assert (d < procedural.CAMERA_DISTANCE + 1 + 1e-4).all()
    # Depth holds one of the 4 samples whose coverage makes the mask.
    assert not (finite & ~view.mask).any()


def test_same_inputs_give_the_same_bytes(renderer):
  obj = procedural.make_object("cars", 2)
  a, b = renderer.render(obj, 40.0, 10.0), renderer.render(obj, 40.0, 10.0)
  assert a.rgb.tobytes() == b.rgb.tobytes() and a.depth.tobytes() == b.depth.tobytes()
  c = procedural.Renderer(SIZE).render(procedural.make_object("cars", 2), 40.0, 10.0)
  assert a.rgb.tobytes() == c.rgb.tobytes()


_SUBPROCESS = """
import hashlib
from chairgen import procedural
v = procedural.Renderer({size}).render(procedural.make_object("chairs", 3, 1), 23.0, 30.0)
print(hashlib.sha256(v.rgb.tobytes() + v.mask.tobytes()).hexdigest())
"""


def test_same_bytes_in_another_process(renderer):
  view = renderer.render(procedural.make_object("chairs", 3, 1), 23.0, 30.0)
  here = hashlib.sha256(view.rgb.tobytes() + view.mask.tobytes()).hexdigest()
  out = subprocess.run([sys.executable, "-c", _SUBPROCESS.format(size=SIZE)],
                       capture_output=True, text=True, check=True)
  assert out.stdout.strip() == here


def test_different_models_give_different_images(renderer):
  images = [renderer.render(procedural.make_object("chairs", i), 30.0, 20.0).rgb
            for i in range(8)]
  for i in range(8):
    for j in range(i + 1, 8):
      assert (images[i] != images[j]).any(), (i, j)


def _pinhole(points, azimuth, elevation, size):
  """Textbook pinhole camera: centre C on the view sphere, looking at the origin, y up."""
  az, el = np.deg2rad(azimuth), np.deg2rad(elevation)
  centre = procedural.CAMERA_DISTANCE * np.array(
      [np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
  forward = -centre / np.linalg.norm(centre)
  right = np.array([np.cos(az), 0.0, -np.sin(az)])  # Horizontal, also at elevation 90.
  down = np.cross(forward, right)
  focal = (size / 2) / np.tan(np.deg2rad(procedural.FIELD_OF_VIEW_DEG) / 2)
  rel = np.asarray(points, np.float64) - centre
  z = rel @ forward
  return np.stack([focal * (rel @ right) / z + size / 2, focal * (rel @ down) / z + size / 2], 1)


@pytest.mark.parametrize("family", procedural.FAMILIES)
def test_keypoints_follow_the_pinhole_camera(renderer, family):
  obj = procedural.make_object(family, 6)
  for (az, el), view in zip(ANGLES, renderer.render_views(obj, ANGLES)):
    expected = _pinhole(obj.keypoint_array(), az, el, SIZE)
    np.testing.assert_allclose(view.keypoints_px, expected, atol=1e-3)


def test_pinhole_projects_a_known_point():
  """The camera convention itself: the object's front top appears above the centre."""
  xy = _pinhole(np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.0]]), 0.0, 0.0, 64)
  assert xy[0, 0] == pytest.approx(32) and xy[0, 1] < 32  # Up is up.
  assert xy[1, 0] > 32  # Object +x is on the right at azimuth 0.


@pytest.mark.parametrize("family", procedural.FAMILIES)
def test_visible_keypoints_fall_inside_the_mask(renderer, family):
  """Tolerance: one pixel, i.e. inside the mask dilated by one pixel (8-neighbourhood).

  A keypoint on a visible surface projects inside the object's silhouette; the mask samples
  that silhouette at 4 points per pixel, so a point at a thin part's edge may fall in a
  neighbouring pixel.
  """
  visible = hidden = 0
  for index in range(4):
    for view in _views(renderer, family, index):
      near = ndimage.binary_dilation(view.mask, np.ones((3, 3), bool))
      for (x, y), vis in zip(view.keypoints_px, view.keypoints_visible):
        if vis:
          assert near[int(y), int(x)], (index, view.azimuth_deg, view.elevation_deg, x, y)
        visible += int(vis)
        hidden += int(not vis)
  assert visible > 0 and hidden > 0  # Both outcomes occur, so the test can fail.


def test_occluded_keypoints_are_behind_the_surface(renderer):
  obj = procedural.make_object("chairs", 2)
  for (az, el), view in zip(ANGLES, renderer.render_views(obj, ANGLES)):
    _, depth = procedural.camera.project(obj.keypoint_array(), az, el, SIZE)
    for (x, y), d, vis in zip(view.keypoints_px, depth, view.keypoints_visible):
      surface = view.depth[int(y), int(x)]
      assert vis == (d <= surface + procedural.KEYPOINT_DEPTH_TOLERANCE)


@pytest.mark.parametrize("size", [4, 0, 64.0, "64"])
def test_bad_image_size_raises(size):
  with pytest.raises(ValueError, match="image_size"):
    procedural.Renderer(size)


def test_interleaved_renderers_do_not_disturb_each_other(renderer):
  obj = procedural.make_object("tables", 3)
  before = renderer.render(obj, 10.0, 30.0)
  other = procedural.Renderer(48)  # Creating a context makes it current.
  small = other.render(obj, 10.0, 30.0)
  after = renderer.render(obj, 10.0, 30.0)
  assert small.rgb.shape == (48, 48, 3)
  assert before.rgb.tobytes() == after.rgb.tobytes()
  assert before.depth.tobytes() == after.depth.tobytes()


def test_renderer_process_gives_the_in_process_views_and_reports_child_errors(renderer):
  """The child-interpreter renderer (used beside TensorFlow) is a drop-in replacement."""
  obj = procedural.make_object("chairs", 2, seed=0)
  angles = [(0.0, 0.0), (40.0, 20.0), (355.0, 80.0)]
  child = procedural.RendererProcess(renderer.image_size)
  try:
    remote = child.render_views(obj, angles)
    local = renderer.render_views(obj, angles)
    assert len(remote) == len(local) == 3
    for r, l in zip(remote, local):
      for field in ("rgb", "mask", "depth", "keypoints_px", "keypoints_visible"):
        np.testing.assert_array_equal(getattr(r, field), getattr(l, field), err_msg=field)
    np.testing.assert_array_equal(child.render(obj, 40.0, 20.0).rgb, local[1].rgb)
    with pytest.raises(RuntimeError, match="in the render process"):
      child.render_views("not an object", angles)
    assert child.render(obj, 0.0, 0.0).rgb.shape == local[0].rgb.shape  # still serving
  finally:
    child.release()
  assert child._child.returncode == 0  # pylint: disable=protected-access
  # In process unless TensorFlow is installed (it cannot share a process with llvmpipe).
  opened = procedural.open_renderer(16)
  opened.release()
  expected = procedural.Renderer if importlib.util.find_spec("tensorflow") is None else (
      procedural.RendererProcess)
  assert type(opened) is expected
