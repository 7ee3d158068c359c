"""Section 6's measurements through the named activations, on the session's trained run."""

import dataclasses

import jax
import numpy as np
import pytest

from chairgen import augment
from chairgen import inference
from chairgen import network_analysis


@pytest.fixture(scope="module")
def trained(trained_run):
  return inference.load(trained_run)


def test_a_single_unit_set_to_zero_draws_the_all_zero_image(trained):
  for layer in ("style_fc1", "fc4", "fc5"):
    out = network_analysis.single_unit_images(trained, layer, [None, 3, 3], [0.0, 0.0, 5.0],
                                              30.0, 20.0)
    np.testing.assert_array_equal(out.composite[1], out.composite[0])
    assert np.abs(out.composite[2] - out.composite[0]).max() > 1e-4, layer
  replacement = network_analysis.single_unit_replacement((8, 8, 4), [2], [1.5])
  assert replacement[0, 4, 4, 2] == 1.5 and replacement.sum() == 1.5


def test_the_full_fc5_window_equals_the_unmasked_net_and_a_small_one_does_not(trained):
  style = trained.one_hot([0, 1])
  plain = trained.generate(style, [30.0, 90.0], [20.0, 20.0])
  full = trained.generate(style, [30.0, 90.0], [20.0, 20.0],
                          replace=network_analysis.window_replacements(trained, 8))
  np.testing.assert_array_equal(full.composite, plain.composite)
  small = trained.generate(style, [30.0, 90.0], [20.0, 20.0],
                           replace=network_analysis.window_replacements(trained, 2))
  assert np.abs(small.composite - plain.composite).max() > 1e-3
  window = network_analysis.central_window((8, 8), 4)
  assert window.sum() == 16 and window[2:6, 2:6].all()
  with pytest.raises(ValueError, match="window 9"):
    network_analysis.central_window((8, 8), 9)


def test_zeroing_no_maps_leaves_the_image_unchanged(trained):
  layer = network_analysis.pre_output_layer(trained, "rgb")
  channels = trained.layer_shapes()[layer][-1]
  style = trained.one_hot([0])
  plain = trained.generate(style, 30.0, 20.0)
  same = trained.generate(style, 30.0, 20.0, replace={
      layer: network_analysis.zero_maps_replacement([], channels)})
  np.testing.assert_array_equal(same.composite, plain.composite)
  zeroed = trained.generate(style, 30.0, 20.0, replace={
      layer: network_analysis.zero_maps_replacement([0, 1], channels)})
  assert np.abs(zeroed.composite - plain.composite).max() > 1e-4


def _theta_wired(trained, unit: int, field: str):
  """The same net with FC4 unit `unit` = θ[field] + 2 and no other FC4 unit depending on θ."""
  p = jax.tree.map(np.array, trained.params)
  k = augment.THETA_FIELDS[field]
  for name in ("theta_fc1", "theta_fc2"):
    p[name]["kernel"][:] = 0.0
    p[name]["bias"][:] = 0.0
  p["theta_fc1"]["kernel"][k, 0], p["theta_fc1"]["bias"][0] = 1.0, 2.0   # θ_k + 2 > 0
  p["theta_fc2"]["kernel"][0, 0] = 1.0
  shapes = trained.layer_shapes()
  offset = shapes["style_fc2"][0] + shapes["view_fc2"][0]     # where the θ stream enters FC3
  p["fc3"]["kernel"][:, 0], p["fc3"]["kernel"][offset, :], p["fc3"]["bias"][0] = 0.0, 0.0, 0.0
  p["fc3"]["kernel"][offset, 0] = 1.0               # FC3 unit 0 = θ_k + 2, no other sees θ
  p["fc4"]["kernel"][0, :], p["fc4"]["kernel"][:, unit] = 0.0, 0.0
  p["fc4"]["kernel"][0, unit], p["fc4"]["bias"][unit] = 1.0, 0.0   # FC4 unit = θ_k + 2
  return dataclasses.replace(trained, params=jax.tree.map(np.asarray, p))


def test_the_search_finds_the_fc4_unit_wired_to_one_theta_component(trained):
  wired = _theta_wired(trained, unit=5, field="zoom")
  ids = trained.data.split.train[:6]
  responses = network_analysis.transformation_responses(wired, ids, ["zoom_in", "rotate_ccw"])
  found = {f.direction: f for f in network_analysis.find_units(responses["scaled"])}
  assert found["zoom_in"].unit == 5 and found["zoom_in"].specificity > 100
  assert found["zoom_in"].selectivity > 100
  np.testing.assert_allclose(responses["raw"]["zoom_in"][5], 1.0, atol=1e-4)  # θ zoom: 0 -> 1
  assert np.abs(responses["raw"]["rotate_ccw"]).max() < 1e-4     # nothing else depends on θ
  units = network_analysis.layer_statistics(wired, ids, ["fc4"])["fc4"]
  assert units.maximum[5] == pytest.approx(2.0, abs=1e-4)        # identity θ: 0 + 2


def test_a_transformed_output_is_explained_by_its_strength():
  rng = np.random.default_rng(0)
  mask = np.zeros((1, 32, 32, 1), np.float32)
  mask[:, 8:24, 10:22] = 1.0
  rgb = rng.random((1, 32, 32, 3)).astype(np.float32) * mask
  x, m = augment.apply(jax.numpy.asarray(network_analysis.direction_theta("zoom_in", 1, 0.5)),
                       rgb, mask)
  edited = np.asarray(x) + 1.0 - np.asarray(m)
  best, explained = network_analysis.match_transformation(edited, rgb, mask, "zoom_in",
                                                          [0.0, 0.25, 0.5, 0.75, 1.0])
  assert best[0] == 0.5 and explained[0] > 0.9
  with pytest.raises(ValueError, match="include 0"):
    network_analysis.match_transformation(edited, rgb, mask, "zoom_in", [0.5])


def test_high_frequency_energy_and_filter_measures():
  checker = np.indices((32, 32)).sum(0) % 2
  smooth = np.tile(0.5 + 0.5 * np.cos(2 * np.pi * np.arange(32) / 32), (32, 1))  # 1/32 c/px
  images = np.stack([checker, smooth])[..., None].repeat(3, -1).astype(np.float32)
  hf = network_analysis.high_frequency_energy(images)
  assert hf[0] > 0.99 and hf[1] < 0.05
  kernel = np.zeros((4, 4, 3, 3), np.float32)
  kernel[..., 0, :] = 0.7                                 # flat: no spatial structure
  kernel[1, 2, 1, :] = 1.0                                # a dot
  kernel[..., 2, :] = np.random.default_rng(1).normal(size=(4, 4, 3))
  structure = network_analysis.filter_structure(kernel)
  assert structure[0] == 0 and structure[1] > 0 and np.argsort(structure)[0] == 0
  tiles = network_analysis.filter_tiles(kernel, scale=2, columns=2)
  assert tiles.dtype == np.uint8 and tiles.shape[-1] == 3
  assert network_analysis.direction_theta("zoom_in", 2, 0.0).tolist() == \
      np.asarray(augment.identity_theta(2)).tolist()
  with pytest.raises(ValueError, match="unknown direction"):
    network_analysis.direction_theta("spin", 1)
