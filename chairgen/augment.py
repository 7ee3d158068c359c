"""The artificial transformations T_θ of section 3, in JAX, per example, inside the train step.

Each training target is transformed by a randomly drawn T_θ (in-plane rotation, translation,
zoom-in, stretch, hue, saturation, brightness) and the same θ is fed to the generator, so
the network learns to draw transformed objects on request (Figure 7, section 5.1).

θ is one float32 vector per example that is *both* the network input and the parameters
applied; its layout is `THETA_FIELDS`. Every field is 0 for "no transform" and is measured
in units of the paper's largest amount (`THETA_UNITS`), so the fields lie roughly in [-1, 1]:

=====  ===================  ===========================================================
index  field                meaning (physical value = field × unit)
=====  ===================  ===========================================================
0      ``translation_x``    shift right, × 0.1 of the image width
1      ``translation_y``    shift down, × 0.1 of the image height
2      ``rotation``         in-plane rotation counter-clockwise on screen, × 12°
3      ``zoom``             ln(zoom factor) / ln(1.35); > 0 enlarges the object
4      ``stretch_x``        ln(horizontal stretch factor) / ln(1.1)
5      ``stretch_y``        ln(vertical stretch factor) / ln(1.1)
6      ``hue_sin``          sin(hue shift) (the shift is an angle on the HSV hue circle)
7      ``hue_cos_minus_1``  cos(hue shift) − 1
8      ``saturation``       ln(saturation factor) / ln(4)
9      ``brightness``       ln(brightness factor) / ln(3)
=====  ===================  ===========================================================

`apply` multiplies the image by the mask, so that the result is T(x·s) on black as in
equation (1); shifts the hue, scales HSV saturation and scales brightness (one HSV round
trip, clipped to [0, 1]); and warps image and mask alike with one affine map per example
(stretch, zoom, rotation about the image centre, then translation; bilinear, zeros outside
the source). See docs/augmentation.md for the sampling rules, pictures and timings.
"""

from __future__ import annotations

import math
import types
from typing import Mapping, NamedTuple

import dm_pix
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

# ----------------------------------------------------------------------------- θ layout

THETA_FIELDS: Mapping[str, int] = types.MappingProxyType({
    name: index for index, name in enumerate((
        "translation_x", "translation_y", "rotation", "zoom", "stretch_x", "stretch_y",
        "hue_sin", "hue_cos_minus_1", "saturation", "brightness"))
})
THETA_DIM: int = len(THETA_FIELDS)

# One unit of each field of θ, in physical terms: the paper's largest amount (section 3).
THETA_UNITS: Mapping[str, float] = types.MappingProxyType({
    "translation": 0.1,          # fraction of the image size
    "rotation_deg": 12.0,        # degrees
    "log_zoom": math.log(1.35),
    "log_stretch": math.log(1.1),
    "log_saturation": math.log(4.0),
    "log_brightness": math.log(3.0),
})

# The kinds `single_transform_theta` accepts, and the unit of their `amount`.
TRANSFORM_KINDS: Mapping[str, str] = types.MappingProxyType({
    "translation_x": "fraction of the image width, positive moves right",
    "translation_y": "fraction of the image height, positive moves down",
    "rotation": "degrees, positive turns counter-clockwise on screen",
    "zoom": "factor, > 1 enlarges",
    "stretch_x": "factor, > 1 widens",
    "stretch_y": "factor, > 1 heightens",
    "saturation": "factor on HSV saturation",
    "brightness": "factor on RGB (= HSV value)",
    "hue": "degrees added to the HSV hue",
})

# The rows of Figure 7, top to bottom.
SHEET_ROWS: tuple[str, ...] = (
    "translation", "rotation", "zoom", "stretch", "saturation", "brightness", "hue")

_TRANSFORMS = ("translation", "rotation", "zoom", "stretch", "hue", "saturation", "brightness")


class TransformParams(NamedTuple):
  """θ in physical units; every field is f32[B]."""

  translation_x: jax.Array  # fraction of the image width, + right
  translation_y: jax.Array  # fraction of the image height, + down
  rotation_deg: jax.Array   # counter-clockwise on screen
  zoom: jax.Array           # factor
  stretch_x: jax.Array      # factor
  stretch_y: jax.Array      # factor
  hue_deg: jax.Array        # added to the HSV hue angle
  saturation: jax.Array     # factor
  brightness: jax.Array     # factor


def encode_theta(params: TransformParams) -> jax.Array:
  """Physical parameters (f32[B] each) -> θ f32[B, THETA_DIM]."""
  p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
  hue = jnp.deg2rad(p.hue_deg)
  fields = {
      "translation_x": p.translation_x / THETA_UNITS["translation"],
      "translation_y": p.translation_y / THETA_UNITS["translation"],
      "rotation": p.rotation_deg / THETA_UNITS["rotation_deg"],
      "zoom": jnp.log(p.zoom) / THETA_UNITS["log_zoom"],
      "stretch_x": jnp.log(p.stretch_x) / THETA_UNITS["log_stretch"],
      "stretch_y": jnp.log(p.stretch_y) / THETA_UNITS["log_stretch"],
      "hue_sin": jnp.sin(hue),
      "hue_cos_minus_1": jnp.cos(hue) - 1.0,
      "saturation": jnp.log(p.saturation) / THETA_UNITS["log_saturation"],
      "brightness": jnp.log(p.brightness) / THETA_UNITS["log_brightness"],
  }
  fields = jnp.broadcast_arrays(*(fields[name] for name in THETA_FIELDS))
  return jnp.stack(fields, axis=-1)


def decode_theta(theta_BxT: jax.Array) -> TransformParams:
  """θ f32[B, THETA_DIM] -> physical parameters (f32[B] each); inverse of `encode_theta`."""
  theta_BxT = _check_theta(theta_BxT)
  f = {name: theta_BxT[:, index] for name, index in THETA_FIELDS.items()}
  return TransformParams(
      translation_x=f["translation_x"] * THETA_UNITS["translation"],
      translation_y=f["translation_y"] * THETA_UNITS["translation"],
      rotation_deg=f["rotation"] * THETA_UNITS["rotation_deg"],
      zoom=jnp.exp(f["zoom"] * THETA_UNITS["log_zoom"]),
      stretch_x=jnp.exp(f["stretch_x"] * THETA_UNITS["log_stretch"]),
      stretch_y=jnp.exp(f["stretch_y"] * THETA_UNITS["log_stretch"]),
      hue_deg=jnp.rad2deg(jnp.arctan2(f["hue_sin"], 1.0 + f["hue_cos_minus_1"])),
      saturation=jnp.exp(f["saturation"] * THETA_UNITS["log_saturation"]),
      brightness=jnp.exp(f["brightness"] * THETA_UNITS["log_brightness"]),
  )


def identity_theta(batch: int) -> jax.Array:
  """θ of "no transform": f32[batch, THETA_DIM] of zeros."""
  return jnp.zeros((batch, THETA_DIM), jnp.float32)


def _check_theta(theta_BxT) -> jax.Array:
  theta_BxT = jnp.asarray(theta_BxT, jnp.float32)
  if theta_BxT.ndim != 2 or theta_BxT.shape[1] != THETA_DIM:
    raise ValueError(
        f"theta must have shape [batch, THETA_DIM={THETA_DIM}], got {theta_BxT.shape}; "
        "build it with identity_theta, sample_theta or single_transform_theta.")
  return theta_BxT


# ----------------------------------------------------------------------------- config

def default_config() -> ml_collections.ConfigDict:
  """The paper's ranges (section 3), each transform on for half of the examples."""
  config = ml_collections.ConfigDict()
  config.enabled = True
  config.translation = 0.1                # max |shift|, fraction of the image size, per axis
  config.rotation_deg = 12.0              # max |in-plane rotation|
  config.zoom_range = (1.0, 1.35)         # zoom-in only, log-uniform
  config.stretch_range = (1.0, 1.1)       # along x or y (chosen 50/50), log-uniform
  config.hue_deg = 180.0                  # max |hue shift|; 180 = anywhere on the circle
  config.saturation_range = (0.25, 4.0)   # log-uniform
  config.brightness_range = (0.35, 3.0)   # log-uniform
  # Probability that each transform is drawn for an example (else it is the identity).
  config.probabilities = ml_collections.ConfigDict(
      {name: 0.5 for name in _TRANSFORMS})
  # Strength grows linearly from 0 to 1 over this many train steps (0 = full from the start).
  config.ramp_steps = 0
  return config


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the bad field of an augmentation config, and how to fix it."""
  expected = set(default_config().keys())
  keys = set(config.keys())
  if keys != expected:
    raise ValueError(
        f"augment config: missing fields {sorted(expected - keys)}, unknown fields "
        f"{sorted(keys - expected)}; start from chairgen.augment.default_config().")
  probs = config.probabilities
  if set(probs.keys()) != set(_TRANSFORMS):
    raise ValueError(
        f"augment config: probabilities must name exactly {list(_TRANSFORMS)}, "
        f"got {sorted(probs.keys())}.")
  for name in _TRANSFORMS:
    if not 0.0 <= probs[name] <= 1.0:
      raise ValueError(
          f"augment config: probabilities.{name}={probs[name]} must lie in [0, 1].")
  for name, upper in (("translation", 0.5), ("rotation_deg", 180.0), ("hue_deg", 180.0)):
    if not 0.0 <= config[name] <= upper:
      raise ValueError(f"augment config: {name}={config[name]} must lie in [0, {upper}].")
  for name, lowest in (("zoom_range", 1.0), ("stretch_range", 1.0),
                       ("saturation_range", 0.0), ("brightness_range", 0.0)):
    value = config[name]
    if len(value) != 2:
      raise ValueError(f"augment config: {name}={value} must be a pair (low, high).")
    low, high = value
    if low > high:
      raise ValueError(f"augment config: {name}={value} is inverted; write (low, high).")
    if lowest == 1.0 and low < 1.0:
      raise ValueError(
          f"augment config: {name}={value} goes below 1; the paper's transforms only "
          "enlarge (zoom-in, stretch), so the lower bound must be >= 1.")
    if lowest == 0.0 and low <= 0.0:
      raise ValueError(f"augment config: {name}={value} must be positive factors.")
  if int(config.ramp_steps) != config.ramp_steps or config.ramp_steps < 0:
    raise ValueError(
        f"augment config: ramp_steps={config.ramp_steps} must be an integer >= 0.")


# ----------------------------------------------------------------------------- sampling

def sample_theta(key: jax.Array, batch: int, config: ml_collections.ConfigDict | None = None,
                 step: jax.Array | int | None = None) -> jax.Array:
  """Draws θ f32[batch, THETA_DIM] for one batch; jit-friendly (`step` may be traced).

  Each transform is drawn independently per example with probability
  `config.probabilities[name]`, else it is the identity. Translation, rotation and hue
  are uniform in [-max, max]; zoom, stretch, saturation and brightness are log-uniform in
  their ranges; the stretch axis is x or y with equal chance. With `config.ramp_steps > 0`
  and a `step`, every drawn amount (in θ's log/angle units) is scaled by
  min(1, step / ramp_steps), so augmentation grows from nothing to full strength.
  """
  config = default_config() if config is None else config
  validate_config(config)
  if not config.enabled:
    return identity_theta(batch)
  keys = dict(zip(_TRANSFORMS + ("stretch_axis", "translation_y"),
                  jax.random.split(key, len(_TRANSFORMS) + 2)))
  strength = jnp.float32(1.0)
  if config.ramp_steps > 0 and step is not None:
    strength = jnp.clip(jnp.asarray(step, jnp.float32) / config.ramp_steps, 0.0, 1.0)

  def draw(name, low, high):
    """f32[batch]: uniform in [low, high], scaled by strength, 0 where not drawn."""
    k_on, k_value = jax.random.split(keys[name])
    on = jax.random.bernoulli(k_on, config.probabilities[name], (batch,))
    value = jax.random.uniform(k_value, (batch,), jnp.float32, low, high)
    return jnp.where(on, value * strength, 0.0)

  def log_range(pair):
    return math.log(pair[0]), math.log(pair[1])

  t, r, h = config.translation, config.rotation_deg, config.hue_deg
  # Translation x and y share one on/off draw (key "translation") so the transform's
  # probability is that of a shift at all; y takes its value from its own key.
  k_on, k_x = jax.random.split(keys["translation"])
  shift_on = jax.random.bernoulli(k_on, config.probabilities["translation"], (batch,))
  shift_x, shift_y = (
      jnp.where(shift_on, jax.random.uniform(k, (batch,), jnp.float32, -t, t) * strength, 0.0)
      for k in (k_x, keys["translation_y"]))
  log_stretch = draw("stretch", *log_range(config.stretch_range))
  along_x = jax.random.bernoulli(keys["stretch_axis"], 0.5, (batch,))
  params = TransformParams(
      translation_x=shift_x,
      translation_y=shift_y,
      rotation_deg=draw("rotation", -r, r),
      zoom=jnp.exp(draw("zoom", *log_range(config.zoom_range))),
      stretch_x=jnp.exp(jnp.where(along_x, log_stretch, 0.0)),
      stretch_y=jnp.exp(jnp.where(along_x, 0.0, log_stretch)),
      hue_deg=draw("hue", -h, h),
      saturation=jnp.exp(draw("saturation", *log_range(config.saturation_range))),
      brightness=jnp.exp(draw("brightness", *log_range(config.brightness_range))),
  )
  return encode_theta(params)


# ----------------------------------------------------------------------------- one transform

def _identity_params(batch: int) -> TransformParams:
  zeros, ones = jnp.zeros((batch,), jnp.float32), jnp.ones((batch,), jnp.float32)
  return TransformParams(zeros, zeros, zeros, ones, ones, ones, zeros, ones, ones)


def single_transform_theta(kind: str, amount, batch: int) -> jax.Array:
  """θ f32[batch, THETA_DIM] applying only transform `kind` by `amount` (scalar or f32[batch]).

  `amount` is in the physical unit of `TRANSFORM_KINDS[kind]` (e.g. degrees for rotation,
  a factor for zoom), not in θ's units; values beyond the training ranges are allowed
  (Figure 7 shows zoom-out, which training never does).
  """
  field = {"rotation": "rotation_deg", "hue": "hue_deg"}.get(kind, kind)
  if kind not in TRANSFORM_KINDS:
    raise ValueError(f"unknown transform kind {kind!r}; use one of {list(TRANSFORM_KINDS)}.")
  amount = jnp.broadcast_to(jnp.asarray(amount, jnp.float32), (batch,))
  return encode_theta(_identity_params(batch)._replace(**{field: amount}))


def transformation_sheet_thetas(num_columns: int = 7,
                                config: ml_collections.ConfigDict | None = None) -> jax.Array:
  """θ f32[len(SHEET_ROWS), num_columns, THETA_DIM] for the transformation sheet of Figure 7.

  Rows follow `SHEET_ROWS`; the middle column is the identity. Moving right from it a row
  goes linearly (in θ units) to the config's largest amount at the last column, moving left
  to its opposite: translation right/left, rotation counter-clockwise/clockwise, zoom in/out
  (zoom-out is never seen in training, as in the paper), stretch horizontal/vertical,
  saturation and brightness up to the range's high/low end. The hue row steps by
  360°/num_columns so that its ends stay distinct colours.
  """
  if num_columns < 1 or num_columns % 2 == 0:
    raise ValueError(f"num_columns={num_columns} must be odd, so that the middle column "
                     "is the untransformed image.")
  config = default_config() if config is None else config
  validate_config(config)
  half = num_columns // 2
  t = (np.arange(num_columns) - half) / max(half, 1)           # -1 .. 1, 0 in the middle
  pos, neg = np.clip(t, 0, None), np.clip(-t, 0, None)
  zoom_hi = config.zoom_range[1]
  stretch_hi = config.stretch_range[1]
  sat_lo, sat_hi = config.saturation_range
  bri_lo, bri_hi = config.brightness_range
  rows = {
      "translation": ("translation_x", t * config.translation),
      "rotation": ("rotation", t * config.rotation_deg),
      "zoom": ("zoom", zoom_hi ** t),
      "saturation": ("saturation", sat_hi ** pos * sat_lo ** neg),
      "brightness": ("brightness", bri_hi ** pos * bri_lo ** neg),
      "hue": ("hue", (np.arange(num_columns) - half) * 360.0 / num_columns),
  }
  sheet = []
  for row in SHEET_ROWS:
    if row == "stretch":
      sheet.append(single_transform_theta("stretch_x", stretch_hi ** pos, num_columns)
                   + single_transform_theta("stretch_y", stretch_hi ** neg, num_columns))
    else:
      kind, amounts = rows[row]
      sheet.append(single_transform_theta(kind, amounts, num_columns))
  return jnp.stack(sheet)


# ----------------------------------------------------------------------------- applying θ

def source_coordinates(theta_BxT: jax.Array, height: int, width: int
                       ) -> tuple[jax.Array, jax.Array]:
  """Where each output pixel samples its source: (x f32[B, H, W], y f32[B, H, W]).

  Pixel (row i, column j) has centre (x=j, y=i). The forward map of the content is
  p_out = c + R(rotation)·zoom·diag(stretch_x, stretch_y)·(p_in − c) + shift, c the image
  centre, y pointing down; this returns its inverse at every output pixel.
  """
  p = decode_theta(theta_BxT)
  angle = jnp.deg2rad(p.rotation_deg)
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  sx, sy = p.zoom * p.stretch_x, p.zoom * p.stretch_y
  # Inverse of R·diag(sx, sy) with R = [[cos, sin], [-sin, cos]] (counter-clockwise with
  # y down) is diag(1/sx, 1/sy)·[[cos, -sin], [sin, cos]].
  a, b, c, d = (v[:, None, None] for v in (cos / sx, -sin / sx, sin / sy, cos / sy))
  cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
  dx = (jnp.arange(width, dtype=jnp.float32)[None, None, :] - cx
        - (p.translation_x * width)[:, None, None])
  dy = (jnp.arange(height, dtype=jnp.float32)[None, :, None] - cy
        - (p.translation_y * height)[:, None, None])
  return a * dx + b * dy + cx, c * dx + d * dy + cy


def _bilinear(image_HxWxC: jax.Array, x_HxW: jax.Array, y_HxW: jax.Array) -> jax.Array:
  """Bilinear sampling of one image at (x, y), zeros outside; four gathers.

  Corners outside the image get weight 0 and a clamped (valid) index, so nothing reads
  out of bounds. Written per example and vmapped, so that the gathers keep a batch
  dimension: a train step sharded over the batch (explicit mesh axes, the default of
  `jax.make_mesh`) partitions them without moving images between devices. Measured on
  XLA:CPU (docs/performance.md), image and mask are warped by separate calls because a
  single 4-channel warp that is then sliced makes XLA materialise every gather, and the
  image is not zero-padded because the pad fuses badly with the colour maths.
  """
  h, w, c = image_HxWxC.shape
  flat = image_HxWxC.reshape(h * w, c)
  x0, y0 = jnp.floor(x_HxW), jnp.floor(y_HxW)
  fx, fy = x_HxW - x0, y_HxW - y0

  def corner(xi, yi, weight):
    inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
    index = (jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)).astype(jnp.int32)
    value = flat.at[index].get(mode="promise_in_bounds")
    return value * jnp.where(inside, weight, 0.0)[..., None]

  return (corner(x0, y0, (1 - fx) * (1 - fy)) + corner(x0 + 1, y0, fx * (1 - fy))
          + corner(x0, y0 + 1, (1 - fx) * fy) + corner(x0 + 1, y0 + 1, fx * fy))


def _adjust_colour(rgb_BxHxWx3: jax.Array, params: TransformParams) -> jax.Array:
  """Hue shift, saturation and brightness factors in one HSV round trip; unclipped."""
  col = lambda v: v[:, None, None]
  hsv = dm_pix.rgb_to_hsv(rgb_BxHxWx3)
  hue = (hsv[..., 0] + col(params.hue_deg / 360.0)) % 1.0
  saturation = jnp.clip(hsv[..., 1] * col(params.saturation), 0.0, 1.0)
  value = hsv[..., 2] * col(params.brightness)   # HSV -> RGB is linear in value
  return dm_pix.hsv_to_rgb(jnp.stack([hue, saturation, value], axis=-1))


def _batch_sharded_like(array: jax.Array, reference: jax.Array) -> jax.Array:
  """Under explicit mesh axes, gives `array` the batch sharding of `reference`; else a no-op.

  θ typically comes from `sample_theta` (replicated) while the images are sharded over the
  batch; vmapping over both needs one sharding of the batch dimension.
  """
  sharding = jax.typeof(reference).sharding
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or mesh.empty or jax.sharding.AxisType.Explicit not in mesh.axis_types:
    return array
  batch_axes = sharding.spec[0] if len(sharding.spec) else None
  spec = jax.sharding.PartitionSpec(batch_axes, *([None] * (array.ndim - 1)))
  return jax.sharding.reshard(array, spec)


def apply(theta_BxT: jax.Array, image_BxHxWx3: jax.Array, mask_BxHxWx1: jax.Array
          ) -> tuple[jax.Array, jax.Array]:
  """T_θ on a batch: returns (T(x·s) f[B, H, W, 3] in [0, 1], T(s) f[B, H, W, 1] in [0, 1]).

  `image` is x, float in [0, 1] (on any background: it is multiplied by the mask here, so
  passing x·s gives the same result); `mask` is s, float in [0, 1]. Both get the same
  geometric warp; the image gets the colour changes too. The warped mask is soft (bilinear)
  at the object's edges. `identity_theta` returns (x·s, s) up to float rounding.
  """
  theta_BxT = _check_theta(theta_BxT)
  if not jnp.issubdtype(image_BxHxWx3.dtype, jnp.floating):
    raise TypeError(f"apply expects float images in [0, 1], got {image_BxHxWx3.dtype}; "
                    "convert uint8 with image / 255.")
  if (image_BxHxWx3.ndim != 4 or image_BxHxWx3.shape[-1] != 3
          or mask_BxHxWx1.shape != image_BxHxWx3.shape[:3] + (1,)
          or theta_BxT.shape[0] != image_BxHxWx3.shape[0]):
    raise ValueError(
        f"apply expects theta [B, {THETA_DIM}], image [B, H, W, 3], mask [B, H, W, 1]; got "
        f"{theta_BxT.shape}, {image_BxHxWx3.shape}, {mask_BxHxWx1.shape}.")
  h, w = image_BxHxWx3.shape[1:3]
  theta_BxT = _batch_sharded_like(theta_BxT, image_BxHxWx3)
  mask = _batch_sharded_like(mask_BxHxWx1.astype(image_BxHxWx3.dtype), image_BxHxWx3)
  # Colour first: it is per pixel, so it commutes with the warp up to interpolation, and
  # warping last keeps XLA:CPU from fusing the gathers into the HSV maths and redoing them
  # for every use of a channel (the other order was slower; docs/performance.md).
  rgb = jnp.clip(_adjust_colour(image_BxHxWx3 * mask, decode_theta(theta_BxT)), 0.0, 1.0)
  x, y = source_coordinates(theta_BxT, h, w)
  warp = jax.vmap(_bilinear)
  rgb = warp(rgb, x, y)
  # The mask takes the same warp in transposed layout (x and y swapped): same samples,
  # but index arrays XLA cannot share with the image's warp. Shared, they get
  # materialised, which made apply slower on the CPU (docs/performance.md).
  t = lambda a: jnp.swapaxes(a, 1, 2)
  mask = t(warp(t(mask), t(y), t(x)))
  return (jnp.clip(rgb, 0.0, 1.0).astype(image_BxHxWx3.dtype),
          jnp.clip(mask, 0.0, 1.0).astype(image_BxHxWx3.dtype))
