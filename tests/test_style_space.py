"""Sections 5.4-5.6 helpers: morphs, triangles, samplers, arithmetic, retrieval, measures."""

import jax
import numpy as np
import pytest

from chairgen import evaluators
from chairgen import inference
from chairgen import sampling
from chairgen import style_space
from chairgen.evaluators import _common


@pytest.fixture(scope="module")
def trained(trained_run):
  return inference.load(trained_run)


@pytest.fixture(scope="module")
def view(trained):
  return style_space.TrainingViews(trained.data).nearest_view(30.0, 20.0)


def _one_hot_images(trained, styles, view):
  """The one-hot generations of `styles` (all styles drawn at once: one compiled shape)."""
  m = trained.num_styles
  every = trained.generate(trained.one_hot(np.arange(m)), np.full(m, view[0]),
                           np.full(m, view[1])).composite
  return every[np.asarray(styles)]


def test_a_morphs_end_frames_are_the_two_one_hot_generations(trained, view):
  frames = trained.generate(sampling.morph_styles(trained.num_styles, 0, 2, 5), np.full(5, view[0]),
                            np.full(5, view[1])).composite
  ends = _one_hot_images(trained, [0, 2], view)
  np.testing.assert_allclose(frames[[0, -1]], ends, atol=1e-5)
  assert not np.allclose(frames[2], ends[0], atol=1e-3)
  # And the evaluator's sorted rows start and end with them as well.
  (ev,) = evaluators.from_config({"m": {"type": "style_morphs", "num_pairs": 2, "num_frames": 5,
                                        "show": 3, "azimuth": 30.0, "elevation": 20.0}})
  result = ev.run(trained)
  for pair, row in zip(result.arrays["pairs"], result.arrays["frames"]):
    ends = _one_hot_images(trained, list(pair), view)
    np.testing.assert_allclose(row[[0, -1]] / 255.0, ends, atol=1 / 255 + 1e-6)
  assert np.all(np.diff(result.arrays["score"]) >= 0)      # best first
  assert 0 <= result.metrics["beats_crossfade"] <= 1


def test_a_three_way_tables_corners_are_the_three_chairs(trained, view):
  n = 4
  styles = style_space.triangle_styles(trained.num_styles, (0, 1, 2), (3, 1, 0), n)
  eye = np.eye(trained.num_styles)
  corners = {(0, 1): 0, (0, n): 1, (n - 1, n): 2, (n - 1, 0): 3, (0, 0): 1, (n - 1, n - 1): 0}
  for (i, j), s in corners.items():
    np.testing.assert_allclose(styles[i, j], eye[s])
  np.testing.assert_allclose(styles.sum(-1), 1.0, atol=1e-6)
  (ev,) = evaluators.from_config({"t": {"type": "style_triangles", "n": n,
                                        "triples": [[0, 1, 2], [3, 1, 0]]}})
  images = ev.run(trained).arrays["images"] / 255.0
  for (i, j), s in corners.items():
    np.testing.assert_allclose(images[i, j], _one_hot_images(trained, [s], view)[0],
                               atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("layer", style_space.LAYERS)
def test_arithmetic_with_a_zero_difference_returns_the_chair_unchanged(trained, view, layer):
  size = style_space.style_features(trained, trained.one_hot([1]), layer).shape[1]
  out = style_space.arithmetic(trained, [1, 3], np.zeros(size), layer, view[0], view[1])
  np.testing.assert_allclose(out.composite, _one_hot_images(trained, [1, 3], view), atol=1e-5)
  moved = style_space.arithmetic(trained, [1], style_space.attribute_difference(
      trained, [1], [2], layer), layer, view[0], view[1])
  # base + (f(2) - f(1)) is chair 2 itself
  np.testing.assert_allclose(moved.composite, _one_hot_images(trained, [2], view), atol=1e-4)
  with pytest.raises(ValueError, match="features"):
    style_space.arithmetic(trained, [1], np.zeros(size + 1), layer, view[0], view[1])


def test_nearest_neighbour_retrieval_finds_the_training_image_itself(trained, view):
  bank = style_space.TrainingViews(trained.data)
  ids, images = bank.at_view(*view)
  found = bank.nearest(images, view[0], view[1])
  np.testing.assert_array_equal(found.ids, ids)
  np.testing.assert_allclose(found.distance, 0.0, atol=1e-6)
  np.testing.assert_array_equal(found.styles, trained.data.examples(ids)["style"])
  with pytest.raises(KeyError, match="nearest_view"):
    bank.at_view(view[0] + 1.234, view[1])


def test_samplers_are_deterministic_per_key_and_differ_across_keys():
  k1, k2 = jax.random.key(1), jax.random.key(2)
  for sampler in (lambda k: style_space.softmax_gaussian_styles(k, 6, 10, 2.0),
                  lambda k: style_space.random_mixture_styles(k, 6, 10, 3),
                  lambda k: style_space.gaussian_features(k, 6, (5,), 0.5)):
    np.testing.assert_array_equal(sampler(k1), sampler(k1))
    assert not np.allclose(sampler(k1), sampler(k2))
  soft = style_space.softmax_gaussian_styles(k1, 100, 10, 4.0)
  np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-5)
  assert soft.max(1).mean() > style_space.softmax_gaussian_styles(k1, 100, 10, 2.0).max(1).mean()
  mix = style_space.random_mixture_styles(k1, 50, 10, 3)
  assert np.all((mix > 0).sum(1) == 3)
  np.testing.assert_allclose(mix.sum(1), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match="m must lie"):
    style_space.random_mixture_styles(k1, 2, 4, 5)


def test_measures_on_known_images():
  white, black = np.ones((1, 8, 8, 3)), np.zeros((1, 8, 8, 3))
  np.testing.assert_allclose(style_space.rms_distances(white, black), [[1.0]])
  assert style_space.diversity(np.concatenate([white, white])) == 0.0
  assert style_space.diversity(np.concatenate([white, black])) == pytest.approx(1.0)
  checker = np.indices((8, 8)).sum(0) % 2
  sharp = np.repeat(checker[None, :, :, None], 3, axis=-1).astype(np.float32)
  assert style_space.sharpness(sharp)[0] > style_space.sharpness(white)[0] == 0.0
  fade = style_space.crossfade(black[0], white[0], 9)
  nearest_end = np.minimum(np.linspace(0, 1, 9), 1 - np.linspace(0, 1, 9))
  q = style_space.morph_quality(fade, nearest_end)
  assert q["jumpiness"] == pytest.approx(0.0, abs=1e-9) and q["stray"] == pytest.approx(
      nearest_end[1:-1].mean())
  snap = np.concatenate([np.repeat(black, 5, 0), np.repeat(white, 4, 0)])
  assert style_space.morph_quality(snap, np.zeros(9))["jumpiness"] == pytest.approx(1.0)


def test_procedural_truth_is_the_stored_view_and_the_counterfactual_changes_it(trained, view):
  models = style_space.procedural_models(trained)
  assert len(models) == trained.num_styles
  arm = next(s for s, m in enumerate(models) if m.factors["armrests"])
  truth = _common.stored_truth(trained.data, [arm], [view[0]], [view[1]], trained.image_size)[0]
  np.testing.assert_array_equal(style_space.render_procedural(models[arm], [view],
                                                              trained.image_size), truth)
  armless = style_space.render_procedural(models[arm], [view], trained.image_size,
                                          {"armrests": False})
  assert not np.array_equal(armless, truth)


def test_feature_arithmetic_and_random_samples_evaluators(trained):
  (arith, samples, vae_only) = evaluators.from_config({
      "a": {"type": "feature_arithmetic", "views": [[30, 20]], "max_bases": 1,
            "attributes": [{"name": "with_arms", "factor": "armrests", "from": False,
                            "to": True},
                           {"name": "none", "factor": "armrests", "from": True, "to": False}]},
      "r": {"type": "random_samples", "num_samples": 6, "figure_samples": 2,
            "methods": [{"name": "a", "kind": "softmax_gaussian", "sigma": 2.0},
                        {"name": "g", "kind": "fc2_noise", "scale": 1.0}]},
      "v": {"type": "random_samples", "num_samples": 4, "figure_samples": 2, "methods": [{"name": "e",
                                                                   "kind": "vae_prior"}]}})
  result = arith.run(trained)
  assert result.info["skipped"] and "none" in result.info["skipped"][0]   # one armchair only
  assert result.arrays["with_arms_mse"].shape == (1, 3, 2)
  assert result.metrics["mse_with_arms_truth"] > 0
  r = samples.run(trained)
  assert r.arrays["a_samples"].shape[0] == 2 and r.metrics["fc2_rms"] > 0
  assert 0 <= r.metrics["copies_a"] <= 1 and r.metrics["diversity_g"] > 0
  with pytest.raises(ValueError, match="not a VAE"):
    vae_only.run(trained)
