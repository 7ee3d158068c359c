"""The FC4 'transformation neurons', found by measurement: Figures 22 and 23 (section 6.1).

For each direction of `network_analysis.DIRECTIONS` (a transform at the largest amount of its
augmentation range: move right/left/down/up, rotate either way, zoom in, stretch x or y, more
or less saturation and brightness, hue ±90°) every unit's response is its mean activation
increase from θ = identity to that θ over `max_examples` training images (their styles and
views), in units of the layer's RMS. The unit with the largest response is the direction's
unit; *specificity* = its response / the runner-up's, *selectivity* = its response / its
largest response to a direction of another kind. A direction has a *specialised* unit when
both are >= `threshold` (1.5, fixed before any run).

Figure 22: per direction, a real chair (the first of `edit_examples` training images) with
only that unit raised by g · (its measured response in the layer's units), g in `gains`;
beside the paper, each edited image is compared with T_θ of the unedited output for the
direction's strengths `strengths` (`network_analysis.match_transformation`): the best strength
and the share of the edit's change it explains. Figure 23: the unit's outgoing weights into
the RGB stream's FC5, the `num_channels` 8 x 8 channels with the largest weight norm (one scale
per row, mid grey = 0).

Metrics: `response_<d>`, `specificity_<d>`, `selectivity_<d>`, `explained_<d>` (mean over
chairs and gains > 0), `strength_<d>` (mean best strength at the largest gain),
`num_specialised`, `num_distinct_units`, `num_directions`. Arrays: `unit`, `response`,
`specificity`, `selectivity`, `explained` [D, gains], `strength` [D, gains], `scaled` [D, U].
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import network_analysis
from chairgen.evaluators import Result
from chairgen.evaluators import _common


class Evaluator:

  def __init__(self, directions=tuple(network_analysis.DIRECTIONS), layer: str = "fc4",
               next_layer: str = "rgb_fc5", max_examples: int = 64, edit_examples: int = 8,
               gains=(0.0, 1.0, 2.0, 4.0, 8.0), strengths=tuple(np.linspace(0.0, 2.0, 21)),
               num_channels: int = 8, threshold: float = 1.5):
    unknown = [d for d in directions if d not in network_analysis.DIRECTIONS]
    if unknown or not directions:
      raise ValueError(f"directions must be among {list(network_analysis.DIRECTIONS)}, got "
                       f"{unknown or directions}")
    self.directions, self.layer, self.next_layer = tuple(directions), layer, next_layer
    self.max_examples, self.edit_examples = int(max_examples), int(edit_examples)
    self.gains, self.strengths = tuple(float(g) for g in gains), tuple(float(s) for s in strengths)
    self.num_channels, self.threshold = int(num_channels), float(threshold)

  def run(self, trained, rng) -> Result:
    del rng  # deterministic: evenly spaced examples, every unit measured
    ids = _common.evenly_spaced(trained.data.split.train, self.max_examples)
    responses = network_analysis.transformation_responses(trained, ids, self.directions,
                                                          self.layer)
    found = network_analysis.find_units(responses["scaled"])
    edit_ids = _common.evenly_spaced(trained.data.split.train, self.edit_examples)
    batch = trained.data.examples(edit_ids)
    unedited = trained.generate(trained.one_hot(batch["style"]), batch["azimuth"],
                                batch["elevation"], capture=(self.layer,))
    n, g = len(edit_ids), len(self.gains)
    rows, explained, strength = [], [], []
    for f in found:
      raw = float(responses["raw"][f.direction][f.unit])
      out = network_analysis.edit_unit(trained, edit_ids, self.layer, f.unit,
                                       [gain * raw for gain in self.gains],
                                       base=unedited.activations[self.layer])
      composite = out.composite.reshape((n, g) + out.composite.shape[1:])
      rows.append(composite[0])
      best, share = network_analysis.match_transformation(
          out.composite, np.repeat(unedited.rgb, g, axis=0), np.repeat(unedited.mask, g, axis=0),
          f.direction, self.strengths)
      explained.append(share.reshape(n, g).mean(axis=0))
      strength.append(best.reshape(n, g).mean(axis=0))
    explained, strength = np.asarray(explained), np.asarray(strength)
    metrics = {}
    positive = np.asarray(self.gains) > 0
    for i, f in enumerate(found):
      metrics[f"response_{f.direction}"] = f.response
      metrics[f"specificity_{f.direction}"] = min(f.specificity, 1e6)
      metrics[f"selectivity_{f.direction}"] = min(f.selectivity, 1e6)
      metrics[f"explained_{f.direction}"] = float(explained[i, positive].mean())
      metrics[f"strength_{f.direction}"] = float(strength[i, -1])
    specialised = [f for f in found
                   if f.specificity >= self.threshold and f.selectivity >= self.threshold]
    metrics.update(num_specialised=float(len(specialised)),
                   num_distinct_units=float(len({f.unit for f in found})),
                   num_directions=float(len(found)))
    images = {"figure22": imaging.image_grid(np.stack(rows)),
              "figure23": self._weights_figure(trained, [f.unit for f in found])}
    return Result(
        metrics=metrics, images=images,
        arrays={"unit": np.asarray([f.unit for f in found], np.int32),
                "response": np.asarray([f.response for f in found]),
                "specificity": np.asarray([min(f.specificity, 1e6) for f in found]),
                "selectivity": np.asarray([min(f.selectivity, 1e6) for f in found]),
                "explained": explained, "strength": strength,
                "scaled": np.stack([responses["scaled"][d] for d in self.directions])},
        info={"directions": list(self.directions), "gains": list(self.gains),
              "strengths": list(self.strengths),
              "found": [{"direction": f.direction, "unit": f.unit, "runner_up": f.runner_up,
                         "other_direction": f.other_direction} for f in found],
              "specialised": [f.direction for f in specialised]})

  def _weights_figure(self, trained, units) -> np.ndarray:
    """Per unit: its weights into the next layer's 8 x 8 channels with the largest norm."""
    kernel = np.asarray(trained.params[self.next_layer]["kernel"], np.float32)
    shape = trained.layer_shapes()[self.next_layer]
    rows = []
    for unit in units:
      maps = kernel[unit].reshape(shape)                     # [8, 8, C]
      norms = np.sqrt(np.square(maps).sum(axis=(0, 1)))
      top = np.argsort(-norms, kind="stable")[:self.num_channels]
      chosen = np.moveaxis(maps[..., top], -1, 0)            # [k, 8, 8]
      chosen = network_analysis.signed_to_grey(chosen)
      chosen = np.repeat(np.repeat(chosen, 6, axis=1), 6, axis=2)
      rows.append(np.repeat(chosen[..., None], 3, axis=-1))
    return imaging.image_grid(np.stack(rows))
