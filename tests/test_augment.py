"""Tests of chairgen.augment: each transform of T_θ does what it says, on known images."""

import math
import os
import subprocess
import sys

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chairgen import augment

SIZE = 41          # odd, so the image centre is pixel (20, 20)
CENTRE = (SIZE - 1) / 2
_apply = jax.jit(augment.apply)   # eager dispatch of the many small ops is slower to test


def _blob(x, y, sigma=1.5, size=SIZE):
  """f32[1, size, size, 1]: a Gaussian blob centred at pixel (x, y)."""
  ys, xs = np.mgrid[:size, :size]
  blob = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
  return jnp.asarray(blob[None, :, :, None], jnp.float32)


def _centroid(mask_1xHxWx1):
  m = np.asarray(mask_1xHxWx1[0, :, :, 0], np.float64)
  ys, xs = np.mgrid[:m.shape[0], :m.shape[1]]
  return (xs * m).sum() / m.sum(), (ys * m).sum() / m.sum()


def _warp_blob(kind, amount, x, y):
  """Warps a white blob at (x, y) by one transform; returns the mask's centroid."""
  mask = _blob(x, y)
  image = jnp.ones((1, SIZE, SIZE, 3), jnp.float32)
  theta = augment.single_transform_theta(kind, amount, 1)
  _, mask_out = _apply(theta, image, mask)
  return _centroid(mask_out)


def _solid(rgb, size=4):
  """f32[1, size, size, 3] of one colour, and a full mask."""
  image = jnp.broadcast_to(jnp.asarray(rgb, jnp.float32), (1, size, size, 3))
  return image, jnp.ones((1, size, size, 1), jnp.float32)


def _colour(kind, amount, rgb):
  image, mask = _solid(rgb)
  out, _ = _apply(augment.single_transform_theta(kind, amount, 1), image, mask)
  return np.asarray(out[0, 0, 0])


# ----------------------------------------------------------------------------- θ and identity

def test_theta_layout_is_a_name_to_index_map():
  assert augment.THETA_DIM == len(augment.THETA_FIELDS) == 10
  assert sorted(augment.THETA_FIELDS.values()) == list(range(augment.THETA_DIM))
  assert augment.identity_theta(3).shape == (3, augment.THETA_DIM)
  assert augment.identity_theta(3).dtype == jnp.float32
  assert not np.any(augment.identity_theta(3))


def test_identity_theta_leaves_segmented_images_unchanged():
  k_img, k_mask = jax.random.split(jax.random.PRNGKey(0))
  mask = (jax.random.uniform(k_mask, (5, 24, 32, 1)) > 0.4).astype(jnp.float32)
  image = jax.random.uniform(k_img, (5, 24, 32, 3)) * mask          # x·s
  image_out, mask_out = _apply(augment.identity_theta(5), image, mask)
  np.testing.assert_allclose(image_out, image, atol=1e-6)
  np.testing.assert_array_equal(mask_out, mask)


def test_apply_segments_the_image_onto_black():
  image, mask = _solid([1.0, 1.0, 1.0], size=8)                      # white everywhere
  mask = mask.at[:, :, :4].set(0.0)                                   # object: right half
  image_out, mask_out = _apply(augment.identity_theta(1), image, mask)
  np.testing.assert_allclose(image_out[0, :, :4], 0.0, atol=1e-6)   # T(x·s), background 0
  np.testing.assert_allclose(image_out[0, :, 4:], 1.0, atol=1e-6)
  np.testing.assert_array_equal(mask_out, mask)


def test_encode_decode_round_trip():
  params = augment.TransformParams(
      translation_x=jnp.array([0.05, -0.1]), translation_y=jnp.array([-0.02, 0.1]),
      rotation_deg=jnp.array([12.0, -7.0]), zoom=jnp.array([1.35, 1.0]),
      stretch_x=jnp.array([1.1, 1.0]), stretch_y=jnp.array([1.0, 1.05]),
      hue_deg=jnp.array([170.0, -90.0]), saturation=jnp.array([0.25, 4.0]),
      brightness=jnp.array([0.35, 3.0]))
  theta = augment.encode_theta(params)
  assert theta.shape == (2, augment.THETA_DIM)
  assert np.all(np.abs(theta) <= 2.0 + 1e-6)                          # roughly unit scale
  for got, want in zip(augment.decode_theta(theta), params):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("kind,amount,shift", [
    ("translation_x", 0.1, (4, 0)), ("translation_x", -0.2, (-8, 0)),
    ("translation_y", 0.1, (0, 3)), ("translation_y", -0.2, (0, -6)),
])
def test_translation_moves_a_pixel_by_a_fraction_of_the_image(kind, amount, shift):
    # 40 px wide, 30 px high: 10 % is exactly 4 px across and 3 px down, so a single bright
    # pixel moves without blur.
  image = jnp.zeros((1, 30, 40, 3)).at[0, 12, 15].set(1.0)
  mask = jnp.zeros((1, 30, 40, 1)).at[0, 12, 15].set(1.0)
  image_out, mask_out = _apply(
      augment.single_transform_theta(kind, amount, 1), image, mask)
  row, col = 12 + shift[1], 15 + shift[0]
  np.testing.assert_allclose(image_out[0, row, col], 1.0, atol=1e-5)
  np.testing.assert_allclose(mask_out[0, row, col, 0], 1.0, atol=1e-5)
  assert float(jnp.sum(mask_out)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("degrees", [12.0, -12.0, 5.0])
def test_rotation_turns_a_point_about_the_centre_counter_clockwise(degrees):
  x, y = _warp_blob("rotation", degrees, CENTRE + 10, CENTRE)
  a = math.radians(degrees)
  # Counter-clockwise on screen, y pointing down: (10, 0) goes to (10 cos a, -10 sin a).
  assert x == pytest.approx(CENTRE + 10 * math.cos(a), abs=0.05)
  assert y == pytest.approx(CENTRE - 10 * math.sin(a), abs=0.05)


@pytest.mark.parametrize("factor", [1.0, 1.2, 1.35, 0.8])
def test_zoom_scales_distances_from_the_centre(factor):
  x, y = _warp_blob("zoom", factor, CENTRE + 8, CENTRE - 5)
  assert x == pytest.approx(CENTRE + 8 * factor, abs=0.05)
  assert y == pytest.approx(CENTRE - 5 * factor, abs=0.05)


def test_zoom_in_enlarges_the_object_area():
  mask = jnp.zeros((1, SIZE, SIZE, 1)).at[0, 15:26, 15:26].set(1.0)
  _, mask_out = _apply(augment.single_transform_theta("zoom", 1.3, 1),
                              jnp.ones((1, SIZE, SIZE, 3)), mask)
  assert float(mask_out.sum()) == pytest.approx(float(mask.sum()) * 1.3 ** 2, rel=0.03)


@pytest.mark.parametrize("kind,scale", [("stretch_x", (1.1, 1.0)), ("stretch_y", (1.0, 1.1))])
def test_stretch_acts_along_one_axis_only(kind, scale):
  x, y = _warp_blob(kind, 1.1, CENTRE + 12, CENTRE - 9)
  assert x == pytest.approx(CENTRE + 12 * scale[0], abs=0.05)
  assert y == pytest.approx(CENTRE - 9 * scale[1], abs=0.05)


def test_outside_the_source_is_black_and_unmasked():
  image, mask = _solid([0.3, 0.6, 0.9], size=SIZE)
  image_out, mask_out = _apply(
      augment.single_transform_theta("zoom", 0.5, 1), image, mask)
  for out in (image_out, mask_out):
    np.testing.assert_allclose(out[0, :5, :5], 0.0, atol=1e-6)     # corners: outside
  np.testing.assert_allclose(image_out[0, 20, 20], [0.3, 0.6, 0.9], atol=1e-5)
  np.testing.assert_allclose(mask_out[0, 20, 20], 1.0, atol=1e-6)


def test_image_and_mask_get_the_same_warp():
    # A white object: its segmented image equals its mask in every channel, so after any
    # geometric transform the image must still equal the mask, pixel for pixel.
  config = augment.default_config()
  config.probabilities.update(dict(translation=1.0, rotation=1.0, zoom=1.0, stretch=1.0,
                                   hue=0.0, saturation=0.0, brightness=0.0))
  mask = jnp.zeros((8, 32, 44, 1)).at[:, 6:20, 10:27].set(1.0).at[:, 20:28, 12:15].set(1.0)
  theta = augment.sample_theta(jax.random.PRNGKey(3), 8, config)
  image_out, mask_out = _apply(theta, jnp.ones((8, 32, 44, 3)), mask)   # not square
  assert not np.allclose(mask_out, mask)                               # it did warp
  np.testing.assert_allclose(image_out, jnp.broadcast_to(mask_out, image_out.shape),
                             atol=1e-5)


# ----------------------------------------------------------------------------- colour

@pytest.mark.parametrize("degrees,rgb", [
    (120.0, [0, 1, 0]), (-120.0, [0, 0, 1]), (60.0, [1, 1, 0]), (240.0, [0, 0, 1]),
    (180.0, [0, 1, 1]), (30.0, [1, 0.5, 0]),
])
def test_hue_shift_of_pure_red(degrees, rgb):
  np.testing.assert_allclose(_colour("hue", degrees, [1.0, 0.0, 0.0]), rgb, atol=1e-5)


def test_hue_shift_moves_the_hsv_hue_and_keeps_saturation_and_value():
  colour = [0.2, 0.5, 0.9]
  before = np.asarray(dm_pix.rgb_to_hsv(jnp.asarray(colour)))
  after = np.asarray(dm_pix.rgb_to_hsv(jnp.asarray(_colour("hue", 100.0, colour))))
  assert (after[0] - before[0]) % 1.0 == pytest.approx(100.0 / 360.0, abs=1e-5)
  np.testing.assert_allclose(after[1:], before[1:], atol=1e-5)


@pytest.mark.parametrize("factor,rgb", [
    (1.5, [0.8, 0.2, 0.2]), (0.5, [0.8, 0.6, 0.6]), (4.0, [0.8, 0.0, 0.0]),
    (0.25, [0.8, 0.7, 0.7]),
])
def test_saturation_factor_scales_hsv_saturation(factor, rgb):
    # (0.8, 0.4, 0.4) has HSV saturation 0.5 and value 0.8; saturation is capped at 1.
  np.testing.assert_allclose(_colour("saturation", factor, [0.8, 0.4, 0.4]), rgb, atol=1e-5)


@pytest.mark.parametrize("factor,rgb", [
    (2.0, [0.4, 0.8, 0.2]), (0.35, [0.07, 0.14, 0.035]), (3.0, [0.6, 1.0, 0.3]),
])
def test_brightness_factor_multiplies_and_clips(factor, rgb):
  np.testing.assert_allclose(_colour("brightness", factor, [0.2, 0.4, 0.1]), rgb, atol=1e-5)


def test_colour_changes_leave_the_mask_alone():
  image, mask = _solid([0.2, 0.4, 0.1], size=8)
  mask = mask.at[:, :3].set(0.0)
  for kind, amount in (("hue", 90.0), ("saturation", 3.0), ("brightness", 2.5)):
    _, mask_out = _apply(augment.single_transform_theta(kind, amount, 1), image, mask)
    np.testing.assert_array_equal(mask_out, mask)


# ----------------------------------------------------------------------------- sampling

def test_sampled_parameters_lie_in_the_papers_ranges():
  theta = augment.sample_theta(jax.random.PRNGKey(0), 4096)
  assert theta.shape == (4096, augment.THETA_DIM) and theta.dtype == jnp.float32
  p = jax.tree.map(np.asarray, augment.decode_theta(theta))
  eps = 1e-5
  assert np.all(np.abs(p.translation_x) <= 0.1 + eps)
  assert np.all(np.abs(p.translation_y) <= 0.1 + eps)
  assert np.all(np.abs(p.rotation_deg) <= 12 + eps)
  assert np.all((p.zoom >= 1 - eps) & (p.zoom <= 1.35 + eps))
  for stretch in (p.stretch_x, p.stretch_y):
    assert np.all((stretch >= 1 - eps) & (stretch <= 1.1 + eps))
  assert not np.any((p.stretch_x > 1 + eps) & (p.stretch_y > 1 + eps))  # one axis at a time
  assert np.all(np.abs(p.hue_deg) <= 180 + eps)
  assert np.all((p.saturation >= 0.25 - eps) & (p.saturation <= 4 + eps))
  assert np.all((p.brightness >= 0.35 - eps) & (p.brightness <= 3 + eps))
  # They also fill the ranges, and each transform is off for about half of the examples.
  assert p.rotation_deg.max() > 11.5 and p.rotation_deg.min() < -11.5
  assert p.zoom.max() > 1.33 and p.saturation.min() < 0.27 and p.brightness.max() > 2.9
  assert p.hue_deg.max() > 170 and p.hue_deg.min() < -170
  for values, identity in ((p.rotation_deg, 0.0), (p.zoom, 1.0), (p.hue_deg, 0.0),
                           (p.saturation, 1.0), (p.translation_x, 0.0)):
    assert np.mean(values == identity) == pytest.approx(0.5, abs=0.04)
  stretched = (p.stretch_x != 1.0) | (p.stretch_y != 1.0)
  assert np.mean(stretched) == pytest.approx(0.5, abs=0.04)
  assert np.mean(p.stretch_x != 1.0) == pytest.approx(0.25, abs=0.04)


def test_log_uniform_factors_have_their_median_at_the_geometric_mean():
  config = augment.default_config()
  config.probabilities.saturation = 1.0
  p = augment.decode_theta(augment.sample_theta(jax.random.PRNGKey(1), 4096, config))
  assert float(np.median(p.saturation)) == pytest.approx(1.0, rel=0.1)  # sqrt(0.25 * 4)


def test_sampling_is_deterministic_in_the_key():
  a = augment.sample_theta(jax.random.PRNGKey(7), 16)
  np.testing.assert_array_equal(a, augment.sample_theta(jax.random.PRNGKey(7), 16))
  assert not np.allclose(a, augment.sample_theta(jax.random.PRNGKey(8), 16))


def test_disabled_config_gives_identity():
  config = augment.default_config()
  config.enabled = False
  np.testing.assert_array_equal(augment.sample_theta(jax.random.PRNGKey(0), 4, config),
                                augment.identity_theta(4))


def test_strength_ramps_up_linearly_with_step():
  config = augment.default_config()
  config.ramp_steps = 1000
  config.probabilities.update({name: 1.0 for name in config.probabilities})
  sample = jax.jit(lambda key, step: augment.sample_theta(key, 512, config, step))
  key = jax.random.PRNGKey(0)
  np.testing.assert_allclose(sample(key, 0), 0.0, atol=1e-6)          # step is traced
  half = augment.decode_theta(sample(key, 500))
  full = augment.decode_theta(sample(key, 5000))
  np.testing.assert_allclose(half.rotation_deg, full.rotation_deg / 2, atol=1e-4)
  np.testing.assert_allclose(np.log(half.zoom), np.log(full.zoom) / 2, atol=1e-5)
  assert np.abs(full.rotation_deg).max() > 11.5 and np.abs(half.rotation_deg).max() <= 6.0
  np.testing.assert_allclose(sample(key, 1000), augment.sample_theta(key, 512, config),
                             atol=1e-6)


# ----------------------------------------------------------------------------- jit, batch

def test_apply_under_jit_matches_eager_and_is_per_example():
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  image = jax.random.uniform(keys[0], (64, 16, 16, 3))
  mask = (jax.random.uniform(keys[1], (64, 16, 16, 1)) > 0.5).astype(jnp.float32)
  theta = jax.jit(augment.sample_theta, static_argnums=1)(keys[2], 64)
  batch_64 = _apply(theta, image, mask)
  for got in batch_64:
    assert got.dtype == jnp.float32
    assert float(got.min()) >= 0.0 and float(got.max()) <= 1.0
  assert batch_64[0].shape == (64, 16, 16, 3) and batch_64[1].shape == (64, 16, 16, 1)
  one = (theta[37:38], image[37:38], mask[37:38])  # batch 1, jitted and eager
  for got, eager, want in zip(_apply(*one), augment.apply(*one), batch_64):
    np.testing.assert_allclose(got, want[37:38], atol=1e-5)
    np.testing.assert_allclose(eager, want[37:38], atol=1e-5)


def test_apply_under_vmap_matches_batched_call():
  image = jax.random.uniform(jax.random.PRNGKey(0), (3, 2, 12, 12, 3))
  mask = jnp.ones((3, 2, 12, 12, 1))
  theta = augment.sample_theta(jax.random.PRNGKey(1), 6).reshape(3, 2, -1)
  vmapped = jax.jit(jax.vmap(augment.apply))(theta, image, mask)
  flat = _apply(theta.reshape(6, -1), image.reshape(6, 12, 12, 3), mask.reshape(6, 12, 12, 1))
  np.testing.assert_allclose(vmapped[0].reshape(6, 12, 12, 3), flat[0], atol=1e-6)


# ----------------------------------------------------------------------------- helpers, errors

def test_single_transform_theta_sets_only_its_fields():
  expected = {"translation_x": ["translation_x"], "translation_y": ["translation_y"],
              "rotation": ["rotation"], "zoom": ["zoom"], "stretch_x": ["stretch_x"],
              "stretch_y": ["stretch_y"], "saturation": ["saturation"],
              "brightness": ["brightness"], "hue": ["hue_sin", "hue_cos_minus_1"]}
  assert set(expected) == set(augment.TRANSFORM_KINDS)
  amounts = {"translation_x": 0.05, "translation_y": 0.05, "rotation": 6.0, "zoom": 1.2,
             "stretch_x": 1.05, "stretch_y": 1.05, "saturation": 2.0, "brightness": 0.5,
             "hue": 90.0}
  for kind, fields in expected.items():
    theta = np.asarray(augment.single_transform_theta(kind, amounts[kind], 2))
    nonzero = {name for name, i in augment.THETA_FIELDS.items() if np.any(theta[:, i])}
    assert nonzero == set(fields), kind
  with pytest.raises(ValueError, match="unknown transform kind"):
    augment.single_transform_theta("shear", 1.0, 1)


def test_transformation_sheet_has_identity_in_the_middle_column():
  sheet = np.asarray(augment.transformation_sheet_thetas(7))
  assert sheet.shape == (len(augment.SHEET_ROWS), 7, augment.THETA_DIM)
  np.testing.assert_array_equal(sheet[:, 3], 0.0)
  assert np.all(np.any(sheet[:, [0, 1, 2, 4, 5, 6]] != 0, axis=-1))     # others transform
  zoom = np.asarray(augment.decode_theta(sheet[augment.SHEET_ROWS.index("zoom")]).zoom)
  np.testing.assert_allclose(zoom[[0, 6]], [1 / 1.35, 1.35], rtol=1e-5)
  assert np.all(np.diff(zoom) > 0)
  stretch = augment.decode_theta(sheet[augment.SHEET_ROWS.index("stretch")])
  np.testing.assert_allclose([stretch.stretch_y[0], stretch.stretch_x[6]], 1.1, rtol=1e-5)
  hue = augment.decode_theta(sheet[augment.SHEET_ROWS.index("hue")]).hue_deg
  assert len(np.unique(np.round(np.asarray(hue) % 360, 3))) == 7      # distinct colours
  with pytest.raises(ValueError, match="odd"):
    augment.transformation_sheet_thetas(6)


@pytest.mark.parametrize("field,value,match", [
    ("zoom_range", (0.9, 1.35), "zoom_range.*below 1"),
    ("stretch_range", (1.1, 1.0), "inverted"),
    ("saturation_range", (4.0, 0.25), "inverted"),
    ("brightness_range", (0.0, 3.0), "positive"),
    ("rotation_deg", -1.0, "rotation_deg"),
    ("ramp_steps", -5, "ramp_steps"),
])
def test_bad_configs_raise_clear_errors(field, value, match):
  config = augment.default_config()
  config[field] = value
  with pytest.raises(ValueError, match=match):
    augment.sample_theta(jax.random.PRNGKey(0), 2, config)


def test_bad_config_fields_raise_clear_errors():
  config = augment.default_config()
  config.probabilities.zoom = 1.5
  with pytest.raises(ValueError, match="probabilities.zoom"):
    augment.validate_config(config)
  config = augment.default_config()
  config.zoom_rnage = (1.0, 1.2)
  with pytest.raises(ValueError, match="unknown fields.*zoom_rnage"):
    augment.validate_config(config)
  augment.validate_config(augment.default_config())


def test_apply_rejects_bad_inputs():
  theta = augment.identity_theta(2)
  with pytest.raises(TypeError, match="float images"):
    augment.apply(theta, jnp.zeros((2, 8, 8, 3), jnp.uint8), jnp.zeros((2, 8, 8, 1)))
  with pytest.raises(ValueError, match="mask"):
    augment.apply(theta, jnp.zeros((2, 8, 8, 3)), jnp.zeros((2, 8, 8)))
  with pytest.raises(ValueError, match="image"):
    augment.apply(theta, jnp.zeros((2, 8, 8)), jnp.zeros((2, 8, 8, 1)))
  with pytest.raises(ValueError, match="THETA_DIM"):
    augment.apply(jnp.zeros((2, 3)), jnp.zeros((2, 8, 8, 3)), jnp.zeros((2, 8, 8, 1)))


_SHARDED_SCRIPT = """
import re, jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from chairgen import augment
mesh = jax.make_mesh((2,), ("data",))            # explicit axes, jax's default
data = NamedSharding(mesh, P("data"))
keys = jax.random.split(jax.random.PRNGKey(0), 2)
image = jax.random.uniform(keys[0], (8, 16, 16, 3))
mask = (jax.random.uniform(keys[1], (8, 16, 16, 1)) > 0.5).astype(jnp.float32)

def step(key, image, mask, step):   # as in a train step: θ replicated, images sharded
    return augment.apply(augment.sample_theta(key, 8, None, step), image, mask)

want = jax.jit(step)(jax.random.PRNGKey(1), image, mask, 3)
with jax.set_mesh(mesh):
    args = (jax.random.PRNGKey(1), jax.device_put(image, data), jax.device_put(mask, data), 3)
    got = jax.jit(step)(*args)
    hlo = jax.jit(step).lower(*args).compile().as_text()
for g, w in zip(got, want):
    assert g.sharding.spec[0] == "data", g.sharding
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5)
assert not re.search("all-gather|all-reduce|all-to-all|collective-permute", hlo), "collective"
print("ok")
"""


@pytest.mark.slow
def test_apply_sharded_over_two_devices_matches_one_device_without_collectives():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
