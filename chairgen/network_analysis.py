"""Section 6: opening the trained network, through its named activations only.

Everything reads or replaces layers with `Trained.generate(..., capture=..., replace=...)`
(`chairgen.models.activations`), so it runs on any device and any generator variant:

    stats = network_analysis.layer_statistics(trained, ids, layers)       # max, RMS per unit
    network_analysis.single_unit_images(trained, "fc4", units, values, az, el)   # Figure 20
    resp = network_analysis.transformation_responses(trained, ids, DIRECTIONS)   # Figure 22
    found = network_analysis.find_units(resp)           # the FC4 unit of each transformation
    network_analysis.window_replacements(trained, k)    # Figure 24: FC5 kept in a k x k window
    network_analysis.high_frequency_energy(images)      # Figure 25's measure

Definitions (docs/evaluation.md, section 6):

* A unit of a dense layer is one feature; of a convolutional layer, one channel at the centre
  of its map (`central_unit`). A single-unit image sets that unit to a value (its maximum over
  the training images, `layer_statistics`) and every other unit of the layer to zero.
* A transformation's *direction* is (kind, amount) of `augment.single_transform_theta`; a
  unit's *response* to it is the mean increase of the unit's activation from θ = identity to
  θ = that transform, over real chairs and views, in units of the layer's RMS activation.
* The *high-frequency energy* of an image is the share of its grey image's spectral power
  (DC left out) at radial frequencies above `cutoff` cycles per pixel (0.25: half Nyquist).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from chairgen import augment
from chairgen import imaging

# The paper's Figure 22 rows and their opposites, in the physical units of
# `augment.TRANSFORM_KINDS`: the largest amount of each augmentation range (section 3).
DIRECTIONS: Mapping[str, tuple[str, float]] = {
    "move_right": ("translation_x", 0.1), "move_left": ("translation_x", -0.1),
    "move_down": ("translation_y", 0.1), "move_up": ("translation_y", -0.1),
    "rotate_ccw": ("rotation", 12.0), "rotate_cw": ("rotation", -12.0),
    "zoom_in": ("zoom", 1.35), "stretch_x": ("stretch_x", 1.1), "stretch_y": ("stretch_y", 1.1),
    "saturate": ("saturation", 4.0), "desaturate": ("saturation", 0.25),
    "brighten": ("brightness", 3.0), "darken": ("brightness", 0.35),
    "hue_plus": ("hue", 90.0), "hue_minus": ("hue", -90.0),
}
_IDENTITY = {"translation_x": 0.0, "translation_y": 0.0, "rotation": 0.0, "zoom": 1.0,
             "stretch_x": 1.0, "stretch_y": 1.0, "saturation": 1.0, "brightness": 1.0,
             "hue": 0.0}


def direction_theta(direction: str, n: int, strength: float = 1.0) -> np.ndarray:
  """θ f32[n, T] of a direction at `strength` times its amount (0 = identity), interpolated
  in θ's own units (log for factors)."""
  if direction not in DIRECTIONS:
    raise ValueError(f"unknown direction {direction!r}; choose from {list(DIRECTIONS)}")
  kind, amount = DIRECTIONS[direction]
  if _IDENTITY[kind] == 1.0:    # a factor: interpolate its logarithm
    amount = float(np.exp(strength * np.log(amount)))
  else:
    amount = strength * amount
  return np.asarray(augment.single_transform_theta(kind, amount, n), np.float32)


# ----------------------------------------------------------------------------- statistics

@dataclasses.dataclass(frozen=True)
class LayerStats:
  maximum: np.ndarray   # per unit (dense) or per channel (conv): max over images and positions
  rms: float            # RMS of the layer's activations over the images


def layer_statistics(trained, ids, layers: Sequence[str]) -> dict[str, LayerStats]:
  """Max and RMS of layers over stored training examples `ids` (their style and view, θ
  identity): the values single units are set to."""
  batch = trained.data.examples(np.asarray(ids, np.int64))
  out = trained.generate(trained.one_hot(batch["style"]), batch["azimuth"], batch["elevation"],
                         capture=tuple(layers))
  stats = {}
  for name in layers:
    a = np.asarray(out.activations[name], np.float64)
    per_unit = a.reshape(len(a), -1, a.shape[-1]).max(axis=(0, 1)) if a.ndim > 2 else a.max(0)
    stats[name] = LayerStats(per_unit, float(np.sqrt(np.mean(np.square(a)))))
  return stats


def central_unit(shape: Sequence[int], unit: int) -> tuple[int, ...]:
  """The index (without batch) of unit `unit`: a feature, or a channel at the map's centre."""
  if len(shape) == 1:
    return (int(unit),)
  return (shape[0] // 2, shape[1] // 2, int(unit))


def single_unit_replacement(shape: Sequence[int], units: Sequence[int | None],
                            values: Sequence[float]) -> np.ndarray:
  """f32[N, *shape]: row i all zero except unit units[i] set to values[i] (None: all zero)."""
  out = np.zeros((len(units),) + tuple(shape), np.float32)
  for i, (unit, value) in enumerate(zip(units, values)):
    if unit is not None:
      out[(i,) + central_unit(shape, unit)] = value
  return out


def single_unit_images(trained, layer: str, units: Sequence[int | None],
                       values: Sequence[float], azimuth: float, elevation: float, *,
                       style: int = 0):
  """Images with `layer` replaced by single units (see `single_unit_replacement`); the
  inputs (style `style`, the view, θ identity) feed every other stream. Returns Generated."""
  shape = trained.layer_shapes()[layer]
  n = len(units)
  return trained.generate(trained.one_hot(np.full(n, style)), np.full(n, azimuth),
                          np.full(n, elevation),
                          replace={layer: single_unit_replacement(shape, units, values)})


def alive_units(stats: LayerStats) -> np.ndarray:
  """Units whose maximum over the training images is > 0 (ReLU units that ever fire)."""
  return np.flatnonzero(stats.maximum > 0)


# ----------------------------------------------------------------------------- filters

def _expanding(trained, stream: str) -> list[str]:
  """The up-convolutional part of a stream ('rgb' or 'mask'); one-stream nets have one
  unprefixed part whose output channels are RGB then mask."""
  names = trained.model.layer_names()
  prefix = f"{stream}_" if any(n.startswith(f"{stream}_") for n in names) else ""
  return [n for n in names if n.startswith(prefix) and n[len(prefix):].startswith(
      ("upconv", "conv"))]


def output_kernel(trained, stream: str) -> np.ndarray:
  """The output layer's kernel of a stream ('rgb' or 'mask'; the last up-convolution),
  f32[kh, kw, C_in, C_out]; of a one-stream net, its RGB or mask output channels."""
  if stream not in ("rgb", "mask"):
    raise ValueError(f"stream must be 'rgb' or 'mask', got {stream!r}")
  layers = _expanding(trained, stream)
  kernel = np.asarray(trained.params[layers[-1]]["kernel"], np.float32)
  if not layers[-1].startswith(f"{stream}_"):   # one stream: RGB channels first
    kernel = kernel[..., :3] if stream == "rgb" else kernel[..., 3:]
  return kernel


def signed_to_grey(values: np.ndarray) -> np.ndarray:
  """Signed values shown around mid grey with one scale: 0.5 + v / (2 max|v|), in [0, 1]
  (weights, filters and changes of an image: 0 is mid grey)."""
  v = np.asarray(values, np.float32)
  return 0.5 + v / (2.0 * max(float(np.abs(v).max()), 1e-12))


def filter_tiles(kernel: np.ndarray, *, scale: int = 8, columns: int = 12) -> np.ndarray:
  """One tile per input channel of an output kernel [kh, kw, C_in, C_out] (C_out 3: colour,
  else the first channel in grey), upscaled `scale`x (nearest). Normalisation: one scale for
  the whole layer, 0.5 + w / (2 max|w|), so mid grey is 0 and filters compare."""
  tiles = np.moveaxis(signed_to_grey(kernel), 2, 0)       # [C_in, kh, kw, C_out]
  if tiles.shape[-1] != 3:
    tiles = np.repeat(tiles[..., :1], 3, axis=-1)
  tiles = np.repeat(np.repeat(tiles, scale, axis=1), scale, axis=2)
  rows = -(-len(tiles) // columns)
  blank = np.ones_like(tiles[:1])
  padded = np.concatenate([tiles] + [blank] * (rows * columns - len(tiles)))
  return imaging.image_grid(padded.reshape((rows, columns) + padded.shape[1:]), pad=2)


def filter_structure(kernel: np.ndarray) -> np.ndarray:
  """Per input channel: the spatial standard deviation of its output filter (over the taps,
  averaged over output channels), f64[C_in]. Near-empty filters (Figure 25) have the least."""
  k = np.asarray(kernel, np.float64)
  return k.reshape(-1, k.shape[2], k.shape[3]).std(axis=0).mean(axis=-1)


# ----------------------------------------------------------------------------- transformations

def transformation_responses(trained, ids, directions: Sequence[str], layer: str = "fc4"
                             ) -> dict[str, np.ndarray]:
  """{direction: f64[U]}: each unit's mean increase from θ identity to the direction's θ over
  the stored examples `ids` (their styles and views), divided by the layer's RMS at identity;
  and 'raw' {direction: f64[U]} the same increase in the layer's own units."""
  batch = trained.data.examples(np.asarray(ids, np.int64))
  n = len(batch["style"])
  style = trained.one_hot(batch["style"])

  def act(theta):
    out = trained.generate(style, batch["azimuth"], batch["elevation"], theta, capture=(layer,))
    return np.asarray(out.activations[layer], np.float64).reshape(n, -1)
  base = act(None)
  rms = max(float(np.sqrt(np.mean(np.square(base)))), 1e-12)
  raw = {d: (act(direction_theta(d, n)) - base).mean(axis=0) for d in directions}
  return {"scaled": {d: r / rms for d, r in raw.items()}, "raw": raw, "rms": rms,
          "base": base}


@dataclasses.dataclass(frozen=True)
class FoundUnit:
  direction: str
  unit: int
  response: float       # in RMS units of the layer
  runner_up: int
  runner_up_response: float
  specificity: float    # response / runner-up response (inf when the runner-up is <= 0)
  other_direction: str  # the other direction this unit responds to most (another kind)
  selectivity: float    # response / its response to other_direction


def find_units(scaled: Mapping[str, np.ndarray]) -> list[FoundUnit]:
  """The unit whose activation increases most for each direction, how far ahead of the
  runner-up it is (specificity), and how much more it responds to this direction than to
  any direction of another kind (selectivity)."""
  found = []
  for d, r in scaled.items():
    order = np.argsort(-r, kind="stable")
    best, second = int(order[0]), int(order[1])
    kind = DIRECTIONS[d][0]
    others = {o: float(v[best]) for o, v in scaled.items() if DIRECTIONS[o][0] != kind}
    other = max(others, key=others.get) if others else ""
    top_other = others.get(other, 0.0)
    found.append(FoundUnit(
        d, best, float(r[best]), second, float(r[second]),
        float(r[best] / r[second]) if r[second] > 0 else float("inf"), other,
        float(r[best] / top_other) if top_other > 0 else float("inf")))
  return found


def edit_unit(trained, ids, layer: str, unit: int, deltas: Sequence[float], *, base=None):
  """Images of stored examples `ids` with one unit of `layer` raised by each delta (the
  layer's other units as computed; `base`: those activations, when the caller has them):
  Generated of [len(ids) * len(deltas)] rows, example-major."""
  batch = trained.data.examples(np.asarray(ids, np.int64))
  n, k = len(batch["style"]), len(deltas)
  if base is None:
    base = trained.generate(trained.one_hot(batch["style"]), batch["azimuth"],
                            batch["elevation"], capture=(layer,)).activations[layer]
  edited = np.repeat(np.asarray(base, np.float32), k, axis=0)
  index = (slice(None),) + central_unit(base.shape[1:], unit)
  edited[index] += np.tile(np.asarray(deltas, np.float32), n)
  return trained.generate(np.repeat(trained.one_hot(batch["style"]), k, axis=0),
                          np.repeat(batch["azimuth"], k), np.repeat(batch["elevation"], k),
                          replace={layer: edited})


def match_transformation(edited_NxSxSx3, unedited_rgb, unedited_mask, direction: str,
                         strengths: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
  """How well T_θ of the unedited outputs explains each edited image: for each image, the
  strength s (of `direction`, from `strengths`, which must include 0) whose T_s(unedited) is
  closest (MSE on white) and the explained share 1 - MSE(edited, T_s(unedited)) /
  MSE(edited, T_0(unedited)), in [0, 1]: 0 when no strength does better than none. Both
  sides go through `augment.apply` (which multiplies the net's x·s by its soft mask once
  more), so that bias cancels. Returns (best strength f64[N], explained f64[N])."""
  if 0.0 not in [float(s) for s in strengths]:
    raise ValueError("strengths must include 0 (the untransformed reference)")
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  edited = imaging.to_float(edited_NxSxSx3).astype(np.float64)
  rgb = jnp.asarray(unedited_rgb, jnp.float32)
  mask = jnp.asarray(unedited_mask, jnp.float32)
  n = len(edited)
  errors = []
  for s in strengths:
    x, m = augment.apply(jnp.asarray(direction_theta(direction, n, s)), rgb, mask)
    ref = np.asarray(imaging.composite_on_white(np.asarray(x), np.asarray(m)), np.float64)
    errors.append(np.mean(np.square(edited - ref).reshape(n, -1), axis=1))
  errors = np.stack(errors, 1)                          # [N, len(strengths)]
  unchanged = errors[:, [float(s) for s in strengths].index(0.0)]
  best = np.argmin(errors, axis=1)
  explained = 1.0 - errors[np.arange(n), best] / np.maximum(unchanged, 1e-12)
  return np.asarray(strengths, np.float64)[best], explained


# ----------------------------------------------------------------------------- hidden maps

def central_window(shape: Sequence[int], k: int) -> np.ndarray:
  """f32[H, W, 1]: 1 in the central k x k window of an H x W map, 0 elsewhere."""
  h, w = int(shape[0]), int(shape[1])
  if not 1 <= k <= min(h, w):
    raise ValueError(f"window {k} must lie in [1, {min(h, w)}] for a {h}x{w} map")
  out = np.zeros((h, w, 1), np.float32)
  top, left = (h - k) // 2, (w - k) // 2
  out[top:top + k, left:left + k] = 1.0
  return out


def fc5_layers(trained) -> tuple[str, ...]:
  """Every stream's FC5 (the first 8 x 8 map)."""
  return tuple(n for n in trained.model.layer_names() if n.endswith("fc5"))


def window_replacements(trained, k: int) -> dict:
  """{fc5 layer: callable} keeping each stream's FC5 only inside the central k x k window."""
  shapes = trained.layer_shapes()
  out = {}
  for name in fc5_layers(trained):
    window = central_window(shapes[name], k)
    out[name] = lambda a, window=window: a * window
  return out


def pre_output_layer(trained, stream: str = "rgb") -> str:
  """The last hidden layer of a stream (the paper's upconv3 at 128 px), whose maps feed the
  output filters of `output_kernel`."""
  layers = _expanding(trained, stream)
  if len(layers) < 2:
    raise ValueError(f"no pre-output layer in stream {stream!r}")
  return layers[-2]


def zero_maps_replacement(channels: Sequence[int], num_channels: int):
  """A callable zeroing the given channels of a feature map (the others untouched)."""
  keep = np.ones(num_channels, np.float32)
  keep[list(channels)] = 0.0
  return lambda a: a * keep


def high_frequency_energy(images_NxSxSx3, cutoff: float = 0.25) -> np.ndarray:
  """Per image: the share of the grey image's spectral power (DC excluded) at radial
  frequency above `cutoff` cycles per pixel, f64[N]."""
  images = imaging.to_float(images_NxSxSx3).astype(np.float64)
  grey = images.mean(axis=-1)
  h, w = grey.shape[1:]
  fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
  radius = np.sqrt(fx ** 2 + fy ** 2)
  power = np.abs(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True))) ** 2
  total = np.maximum(power.sum(axis=(1, 2)), 1e-20)
  return power[:, radius > cutoff].sum(axis=1) / total
