"""Section 5.7's building blocks: OpenCV flows, chaining, drift compensation, keypoint transfer."""

import numpy as np
import pytest

from chairgen import correspondence


def _texture(h=64, w=64, seed=0):
  """A smooth random texture (flow needs structure at several scales), f32[h, w, 3]."""
  import cv2  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  noise = rng.random((h, w)).astype(np.float32)
  image = sum(cv2.GaussianBlur(noise, (0, 0), s) * s for s in (1.0, 2.0, 4.0))
  image = (image - image.min()) / (image.max() - image.min())
  return np.repeat(image[..., None], 3, axis=-1)


def _shifted(image, dx, dy):
  """image seen after moving its content by (dx, dy) pixels (edges replicated)."""
  import cv2  # pylint: disable=g-import-not-at-top
  m = np.float32([[1, 0, dx], [0, 1, dy]])
  return cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("method", correspondence.METHODS)
def test_every_flow_method_recovers_a_known_translation(method):
  a = _texture()
  b = _shifted(a, 3.0, -2.0)
  flow = correspondence.optical_flow(a, b, method)
  inner = flow[12:-12, 12:-12].reshape(-1, 2)
  np.testing.assert_allclose(np.median(inner, axis=0), [3.0, -2.0], atol=0.35)


def test_chaining_two_known_flows_equals_their_composition():
  h, w = 20, 30
  shift = np.broadcast_to(np.float32([2.0, 1.0]), (h, w, 2)).copy()
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  varying = np.stack([0.1 * xs, 0.05 * ys], axis=-1)        # F_bc(q) = (0.1 qx, 0.05 qy)
  out = correspondence.chain([shift, varying])
  # F_ac(p) = (2, 1) + F_bc(p + (2, 1)), exact for a linear field away from the border
  expected = shift + np.stack([0.1 * (xs + 2.0), 0.05 * (ys + 1.0)], axis=-1)
  np.testing.assert_allclose(out[:-2, :-3], expected[:-2, :-3], atol=1e-4)
  np.testing.assert_allclose(correspondence.chain([shift, -shift]), 0.0, atol=1e-6)


def test_an_identity_morph_transfers_keypoints_to_themselves():
  frames = [_texture()] * 12
  flow = correspondence.morph_flow(frames, "dis")
  points = np.float32([[10.5, 20.5], [32.0, 32.0], [50.2, 8.7]])
  moved = correspondence.transfer_keypoints(points, flow)
  np.testing.assert_allclose(moved.points, points, atol=1.0)
  assert list(moved.status) == [correspondence.OK] * 3


def test_a_morph_of_small_steps_adds_up_to_the_whole_translation():
  a = _texture()
  frames = [_shifted(a, 0.5 * i, 0.25 * i) for i in range(13)]   # 6 px, 3 px in all
  for drift in (None, correspondence.DRIFT_STEP):
    flow = correspondence.morph_flow(frames, "dis", drift_step=drift)
    np.testing.assert_allclose(np.median(flow[14:-14, 14:-14].reshape(-1, 2), axis=0),
                               [6.0, 3.0], atol=0.5)


def test_keypoints_that_leave_the_image_or_the_mask_are_reported():
  flow = np.zeros((10, 10, 2), np.float32)
  flow[..., 0] = 4.0
  mask = np.zeros((10, 10), np.float32)
  mask[:, :8] = 1.0
  moved = correspondence.transfer_keypoints([[1.5, 5.5], [3.5, 5.5], [7.5, 2.5]], flow, mask)
  np.testing.assert_allclose(moved.points[:, 0], [5.5, 7.5, 11.5])
  assert list(moved.status) == [correspondence.OK, correspondence.OK, correspondence.OUTSIDE]
  moved = correspondence.transfer_keypoints([[4.5, 5.5]], flow, mask)   # lands at x = 8.5
  assert list(moved.status) == [correspondence.OFF_MASK]


def test_bad_arguments_raise():
  a = _texture(16, 16)
  with pytest.raises(ValueError, match="method must be one of"):
    correspondence.optical_flow(a, a, "farneback")
  with pytest.raises(ValueError, match="differ in size"):
    correspondence.optical_flow(a, a[:8], "dis")
  with pytest.raises(ValueError, match="unknown dis flow parameter"):
    correspondence.optical_flow(a, a, "dis", params={"alpha": 1.0})


def test_sift_matching_finds_the_points_of_a_translated_texture():
  # 128 px: SIFT's window (about 10x the keypoint size) must fit in the image
  a = _texture(128, 128, seed=3)
  b = _shifted(a, 5.0, 3.0)
  points = np.float32([[60.5, 64.5], [70.5, 60.5], [64.5, 70.5]])
  predicted = correspondence.sift_match(a, b, points, size=8.0)
  np.testing.assert_allclose(predicted, points + [5.0, 3.0], atol=1.01)


def test_the_oracle_field_carries_each_keypoint_onto_its_truth():
  points_a = np.float32([[5.5, 5.5], [20.5, 8.5], [12.0, 25.0]])
  points_b = points_a + np.float32([[3.0, 1.0], [-2.0, 4.0], [0.5, -6.0]])
  field = correspondence.nearest_point_field(points_a, points_b, (32, 32))
  moved = correspondence.transfer_keypoints(points_a, field)
  np.testing.assert_allclose(moved.points, points_b, atol=1e-5)
  np.testing.assert_allclose(correspondence.displacements(moved.points, points_b), 0, atol=1e-5)


def test_locate_reports_points_outside_the_image_or_off_the_mask():
  mask = np.zeros((10, 10), np.float32)
  mask[2:8, 2:8] = 1.0
  status = correspondence.locate(np.float32([[5, 5], [-1, 5], [5, 10.5], [0.5, 0.5]]), (10, 10),
                                 mask)
  assert list(status) == [correspondence.OK, correspondence.OUTSIDE, correspondence.OUTSIDE,
                          correspondence.OFF_MASK]


def test_the_span_flows_add_up_to_the_morph_flow():
  a = _texture(seed=1)
  frames = [_shifted(a, 0.4 * i, -0.2 * i) for i in range(20)]
  ends, spans = correspondence.span_flows(frames, "dis")
  assert ends == [9, 18, 19]
  total = correspondence.cumulative(spans)
  np.testing.assert_allclose(total[-1], correspondence.morph_flow(frames, "dis"), atol=1e-5)
  np.testing.assert_allclose(np.median(total[0][16:-16, 16:-16].reshape(-1, 2), 0),
                             [3.6, -1.8], atol=0.4)


def test_drawing_keeps_the_image_and_marks_the_points():
  image = np.ones((16, 16, 3), np.float32)
  drawn = correspondence.draw_points(image, np.float32([[8, 8]]), correspondence.palette(1),
                                     scale=4)
  assert drawn.shape == (64, 64, 3) and drawn.dtype == np.uint8
  assert (drawn[32, 32] != 255).any() and (drawn[2, 2] == 255).all()
  flow = np.full((16, 16, 2), 3.0, np.float32)
  arrows = correspondence.draw_flow(image, flow, scale=2, step=8)
  assert arrows.shape == (32, 32, 3) and (arrows != 255).any()
