"""Output filters and images from single units: Figures 19, 20 and 21 (section 6.1).

Figure 19: the output layer's filters of the RGB and the segmentation streams
(`network_analysis.filter_tiles`: one tile per input channel, one scale for the layer, mid
grey = 0). Figure 20: per layer of `dense_layers` (the paper's FC1 and FC2 of the class
stream, FC3, FC4) a row whose first image comes from the layer set to all zeros and the others
from one unit each, drawn at random (the evaluator's key) among the units that fire on the
training images, set to its maximum over `max_examples` training images with all other units
zero; the view (`azimuth`, `elevation`), θ = identity and style `style` feed the streams the
layer does not replace. Figure 21: the same for `conv_layers` (the paper's upconv2, upconv1 and
FC5 of the RGB stream), one channel at the map's centre per image, shown as the RGB output's
change from the all-zero image (0.5 + d / (2 max|d|) per row): every image is the full output,
so their relative scale is correct.

Metrics: `alive_<layer>` (share of units that fire on the training images) and `change_<layer>`
(mean RMS change of the composite from the all-zero image over the row's single units).
Arrays: `units_<layer>`, `values_<layer>`, `images_<layer>` (the row), `change_<layer>`.
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

  def __init__(self, dense_layers=("style_fc1", "style_fc2", "fc3", "fc4"),
               conv_layers=("rgb_upconv2", "rgb_upconv1", "rgb_fc5"), num_units: int = 7,
               max_examples: int = 256, azimuth: float = 30.0, elevation: float = 20.0,
               style: int = 0):
    if num_units < 1:
      raise ValueError(f"num_units must be >= 1, got {num_units}")
    self.dense_layers, self.conv_layers = tuple(dense_layers), tuple(conv_layers)
    self.num_units, self.max_examples = int(num_units), int(max_examples)
    self.azimuth, self.elevation, self.style = float(azimuth), float(elevation), int(style)

  def run(self, trained, rng) -> Result:
    layers = self.dense_layers + self.conv_layers
    ids = _common.evenly_spaced(trained.data.split.train, self.max_examples)
    stats = network_analysis.layer_statistics(trained, ids, layers)
    metrics, arrays, rows = {}, {}, {}
    for i, layer in enumerate(layers):
      alive = network_analysis.alive_units(stats[layer])
      k = min(self.num_units, len(alive))
      units = (style_space.choose(jax.random.fold_in(rng, i), alive, k).tolist() if k else [])
      values = [float(stats[layer].maximum[u]) for u in units]
      out = network_analysis.single_unit_images(
          trained, layer, [None] + units, [0.0] + values, self.azimuth, self.elevation,
          style=self.style)
      rows[layer] = out
      metrics[f"alive_{layer}"] = float(len(alive) / len(stats[layer].maximum))
      change = style_space.rms_distances(out.composite[1:], out.composite[:1])[:, 0]
      metrics[f"change_{layer}"] = float(change.mean()) if len(change) else 0.0
      arrays[f"units_{layer}"] = np.asarray(units, np.int32)
      arrays[f"values_{layer}"] = np.asarray(values, np.float32)
      arrays[f"images_{layer}"] = imaging.to_uint8(out.composite)
      arrays[f"change_{layer}"] = change
    width = self.num_units + 1
    images = {
        "figure19_rgb": network_analysis.filter_tiles(network_analysis.output_kernel(trained,
                                                                                     "rgb")),
        "figure19_mask": network_analysis.filter_tiles(network_analysis.output_kernel(trained,
                                                                                      "mask")),
        "figure20": imaging.image_grid(np.stack(
            [_common.pad_row(rows[l].composite, width) for l in self.dense_layers])),
        "figure21": imaging.image_grid(np.stack(
            [_common.pad_row(network_analysis.signed_to_grey(rows[l].rgb - rows[l].rgb[:1]),
                             width)
             for l in self.conv_layers])),
    }
    return Result(metrics=metrics, images=images, arrays=arrays,
                  info={"view": [self.azimuth, self.elevation], "style": self.style,
                        "layers": list(layers)})

