"""Hidden-layer analysis: FC5 windows (Figure 24) and the pre-output maps that cancel
up-convolution artifacts (Figure 25), section 6.2.

Chairs: `num_chairs` training images evenly spaced over the split (their style and view).

Figure 24: every stream's FC5 map (8 x 8) kept only in a central k x k window, k in
`windows` (2, 4, 6, 8; 8 is the unmasked net). Measured per window: `sharpness_k` (variance of
the Laplacian, `style_space.sharpness`) and `change_k` (RMS distance to the unmasked image).

Figure 25: the pre-output maps of the RGB stream whose output filters look near-empty, i.e.
the `num_maps` input channels of the output layer with the least spatial structure
(`network_analysis.filter_structure`); top row: those maps of the first chair (one scale per
map), middle: close-ups (the central quarter, upscaled), bottom: the chair generated with those
maps zeroed beside the unchanged one and beside a control with as many other maps zeroed
(drawn with the key). Measured over the chairs: the high-frequency energy
(`network_analysis.high_frequency_energy`, share of power above `cutoff` cycles per pixel)
with the maps zeroed (`hf_zeroed`), unchanged (`hf_unchanged`) and for the control
(`hf_control`). Arrays: per-chair values of all of these, `maps`, `control_maps`,
`structure` (every channel's filter structure).
"""

from __future__ import annotations

import jax
import numpy as np

from chairgen import imaging
from chairgen import network_analysis
from chairgen import style_space
from chairgen.evaluators import Result
from chairgen.evaluators import _common


class Evaluator:

  def __init__(self, windows=(2, 4, 6, 8), num_chairs: int = 8, num_maps: int = 2,
               cutoff: float = 0.25, show: int = 4):
    if not windows or num_chairs < 1 or num_maps < 1:
      raise ValueError("need windows, num_chairs >= 1 and num_maps >= 1")
    self.windows, self.num_chairs, self.num_maps = tuple(int(k) for k in windows), int(
        num_chairs), int(num_maps)
    self.cutoff, self.show = float(cutoff), int(show)

  def _generate(self, trained, batch, replace=None, capture=()):
    return trained.generate(trained.one_hot(batch["style"]), batch["azimuth"],
                            batch["elevation"], replace=replace, capture=capture)

  def run(self, trained, rng) -> Result:
    ids = _common.evenly_spaced(trained.data.split.train, self.num_chairs)
    batch = trained.data.examples(ids)
    layer = network_analysis.pre_output_layer(trained, "rgb")
    full = self._generate(trained, batch, capture=(layer,))
    metrics, arrays, columns = {}, {}, []
    for k in self.windows:
      out = self._generate(trained, batch, network_analysis.window_replacements(trained, k))
      columns.append(out.composite)
      sharp = style_space.sharpness(out.composite)
      change = np.sqrt(np.mean(np.square(out.composite - full.composite).reshape(len(ids), -1),
                               axis=1))
      metrics[f"sharpness_{k}"], metrics[f"change_{k}"] = float(sharp.mean()), float(change.mean())
      arrays[f"sharpness_{k}"], arrays[f"change_{k}"] = sharp, change
    figure24 = np.stack(columns, 1)[:self.show]                 # chairs x windows

    structure = network_analysis.filter_structure(network_analysis.output_kernel(trained, "rgb"))
    channels = len(structure)
    maps = np.argsort(structure, kind="stable")[:self.num_maps]
    others = np.setdiff1d(np.arange(channels), maps)
    control = style_space.choose(rng, others, min(self.num_maps, len(others)))
    zeroed = self._generate(trained, batch, {
        layer: network_analysis.zero_maps_replacement(maps, channels)})
    controlled = self._generate(trained, batch, {
        layer: network_analysis.zero_maps_replacement(control, channels)})
    hf = {name: network_analysis.high_frequency_energy(images, self.cutoff) for name, images in
          (("zeroed", zeroed.composite), ("unchanged", full.composite),
           ("control", controlled.composite))}
    for name, values in hf.items():
      metrics[f"hf_{name}"] = float(values.mean())
      arrays[f"hf_{name}"] = values
    arrays.update(maps=maps.astype(np.int32), control_maps=np.asarray(control, np.int32),
                  structure=structure, windows=np.asarray(self.windows, np.int32))
    images = {"figure24": imaging.image_grid(figure24),
              "figure25": self._figure25(full.activations[layer][0], maps,
                                         [zeroed.composite[0], full.composite[0],
                                          controlled.composite[0]])}
    return Result(metrics=metrics, images=images, arrays=arrays,
                  info={"layer": layer, "maps": maps.tolist(), "control_maps":
                        np.asarray(control).tolist()})

  def _figure25(self, activation_HxWxC, maps, generated) -> np.ndarray:
    """Rows: the maps, their close-ups, and [zeroed, unchanged, control] generations."""
    a = np.asarray(activation_HxWxC, np.float32)
    size = generated[0].shape[0]
    cells_maps, cells_zoom = [], []
    for c in maps:
      m = a[..., c]
      m = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
      h, w = m.shape
      crop = m[h // 2 - h // 8:h // 2 + h // 8, w // 2 - w // 8:w // 2 + w // 8]
      cells_maps.append(_upscaled(m, size))
      cells_zoom.append(_upscaled(crop, size))
    width = max(len(maps), len(generated))
    rows = [_common.pad_row(np.stack(cells_maps), width), _common.pad_row(np.stack(cells_zoom),
                                                                           width),
            _common.pad_row(np.stack(generated), width)]
    return imaging.image_grid(np.stack(rows))


def _upscaled(grey_HxW: np.ndarray, size: int) -> np.ndarray:
  """A grey map blown up to size x size (nearest: its pixels stay visible), f32[S, S, 3]."""
  import cv2  # pylint: disable=g-import-not-at-top
  big = cv2.resize(np.ascontiguousarray(grey_HxW, np.float32), (size, size),
                   interpolation=cv2.INTER_NEAREST)
  return np.repeat(big[..., None], 3, axis=-1)
