"""Section 5.2's nearest-neighbour baseline and its weights (chairgen.viewpoints)."""

import numpy as np
import pytest
from skimage import color, feature

from chairgen import viewpoints

RING = np.arange(0, 360, 45, dtype=np.float64)   # 8 azimuths


def sources(n=6, size=16, seed=0):
  """[N, R, S, S, 3] random 'turntables' on white-ish backgrounds, distinct per chair."""
  rng = np.random.default_rng(seed)
  return rng.uniform(0, 1, (n, len(RING), size, size, 3)).astype(np.float32)


def test_angular_weights_are_linear_in_angle_between_the_bracketing_views():
  w = viewpoints.angular_weights([30, 300, 90], [0, 90])
  np.testing.assert_allclose(w[0], [2 / 3, 1 / 3])
  np.testing.assert_allclose(w[1], [210 / 270, 60 / 270])   # 90 -> 300 -> 360: nearer to 0
  np.testing.assert_allclose(w[2], [0, 1])
  np.testing.assert_allclose(viewpoints.angular_weights([10, 200], [120]), [[1], [1]])
  assert np.allclose(viewpoints.angular_weights([1, 77, 181, 359], [0, 45, 270]).sum(1), 1)


@pytest.mark.parametrize("kind", viewpoints.FEATURES)
@pytest.mark.parametrize("given_pos", [[0], [0, 4], [1, 3, 6]])
def test_a_target_that_copies_a_source_chair_is_predicted_exactly(kind, given_pos):
  src = sources()
  copy = 3
  missing_pos = [p for p in range(len(RING)) if p not in given_pos]
  predicted, neighbours = viewpoints.nearest_neighbour_predict(
      src[copy][given_pos], src[:, given_pos], src[:, missing_pos], RING[given_pos],
      RING[missing_pos], kind)
  assert neighbours.tolist() == [copy] * len(given_pos)
  np.testing.assert_allclose(predicted, src[copy][missing_pos], atol=1e-6)
  # Without its copy among the sources, the target is not reproduced.
  others = np.delete(src, copy, axis=0)
  other = viewpoints.nearest_neighbour_predict(
      src[copy][given_pos], others[:, given_pos], others[:, missing_pos], RING[given_pos],
      RING[missing_pos], kind)[0]
  assert np.mean((other - src[copy][missing_pos]) ** 2) > 0.05


def test_missing_views_blend_the_neighbours_of_the_two_bracketing_views():
  src = sources(n=4)
  target = np.stack([src[1, 0], src[2, 4]])       # given view 0 looks like chair 1, 4 like 2
  predicted, neighbours = viewpoints.nearest_neighbour_predict(
      target, src[:, [0, 4]], src[:, [2]], RING[[0, 4]], RING[[2]], "rgb")
  assert neighbours.tolist() == [1, 2]
  np.testing.assert_allclose(predicted[0], 0.5 * src[1, 2] + 0.5 * src[2, 2], atol=1e-6)


def test_hog_is_scikit_image_hog_on_the_grey_image(monkeypatch):
  images = sources(n=1)[0, :2, ...]
  ours = viewpoints.features(images, "hog")
  theirs = feature.hog(color.rgb2gray(images[0]), orientations=9, pixels_per_cell=(2, 2),
                       cells_per_block=(2, 2), block_norm="L2-Hys")
  np.testing.assert_allclose(ours[0], theirs)
  calls = []
  monkeypatch.setattr(feature, "hog", lambda *a, **k: calls.append(1) or np.zeros(3))
  viewpoints.features(images, "hog")
  assert len(calls) == 2
  with pytest.raises(ValueError, match="feature must be one of"):
    viewpoints.features(images, "sift")


def _target(given, missing):
  return viewpoints.TargetViews(0, 0, 20.0, np.arange(len(given)), np.asarray(given, float),
                                np.arange(len(missing)), np.asarray(missing, float))


def test_figure8_arc_runs_from_one_given_view_to_the_next():
  from chairgen.evaluators import interpolation  # pylint: disable=g-import-not-at-top
  ring = [int(i * 360 / 31) for i in range(31)]
  given = [ring[0], ring[15]]
  az, is_given = interpolation.arc(_target(given, [a for a in ring if a not in given]), 9)
  assert az[0] == 0 and az[-1] == ring[15] and len(az) == 9
  assert is_given.tolist() == [True] + [False] * 7 + [True]
  assert np.all(np.diff(az) > 0)
  # One given view: the whole turn, back to where it began.
  az, is_given = interpolation.arc(_target([ring[3]], [a for a in ring if a != ring[3]]), 9)
  assert az[0] == az[-1] == ring[3] and is_given[0] and is_given[-1] and not is_given[1:-1].any()
  # An arc shorter than num_columns keeps every view on it.
  az, _ = interpolation.arc(_target([0, 20, 40], [10, 30, 50]), 9)
  assert az.tolist() == [0, 10, 20]
