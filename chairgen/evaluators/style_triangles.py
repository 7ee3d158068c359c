"""Three-way style morphs as the paper's triangle table: Figure 14 (section 5.4).

The table has n rows and n + 1 columns and holds two triangles of side n
(`style_space.triangle_layout`): the upper-right one morphs between the styles of the first
triple, the lower-left one between those of the second; every cell's style input is the
barycentric mixture of its triangle's three corner styles, so the corners are the training
chairs themselves. `triples` ([[a, b, c], [d, e, f]]) or two triples drawn with the key from
the training styles (six different ones where the run has six). One view: the stored training view nearest to (`azimuth`, `elevation`).

Metrics: stray (mean over the non-corner cells of the RMS distance to the nearest training
image at that view, divided by the mean RMS distance between the three corner images of the
cell's triangle, as `style_morphs`), num_cells. Picture `triangles`. Arrays: images (uint8
[n, n + 1, S, S, 3]), weights, which (see triangle_layout), triples, view.
"""

from __future__ import annotations

import jax
import numpy as np

from chairgen import imaging
from chairgen import style_space
from chairgen.evaluators import Result


class Evaluator:

  def __init__(self, triples=(), n: int = 5, azimuth: float = 34.0, elevation: float = 20.0):
    self.triples = [tuple(int(s) for s in t) for t in triples]
    if self.triples and (len(self.triples) != 2 or any(len(set(t)) != 3 or len(t) != 3
                                                       for t in self.triples)):
      raise ValueError(f"triples must be two triples of distinct styles, got {triples!r}")
    if n < 2:
      raise ValueError(f"n must be >= 2, got {n}")
    self.n, self.azimuth, self.elevation = int(n), float(azimuth), float(elevation)

  def run(self, trained, rng) -> Result:
    bank = style_space.TrainingViews(trained.data)
    az, el = bank.nearest_view(self.azimuth, self.elevation)
    triples = self.triples
    if not triples:
      pool = style_space.training_styles(trained)
      if len(pool) >= 6:   # six different chairs; with fewer, two independent triples
        chosen = style_space.choose(rng, pool, 6)
      else:
        chosen = np.concatenate([style_space.choose(jax.random.fold_in(rng, i), pool, 3)
                                 for i in range(2)])
      triples = [tuple(int(s) for s in chosen[:3]), tuple(int(s) for s in chosen[3:])]
    n = self.n
    styles = style_space.triangle_styles(trained.num_styles, triples[0], triples[1], n)
    flat = styles.reshape(-1, trained.num_styles)
    out = trained.generate(flat, np.full(len(flat), az), np.full(len(flat), el), rng=rng)
    images = out.composite.reshape((n, n + 1) + out.composite.shape[1:])
    weights, which = style_space.triangle_layout(n)
    distance = bank.nearest(out.composite, az, el).distance.reshape(n, n + 1)
    corner = weights.max(axis=-1) > 1.0 - 1e-6
    spans = []
    for t in range(2):   # mean distance between the generated corner images of each triangle
      corners = images[(which == t) & corner]
      d = style_space.rms_distances(corners, corners)
      spans.append(d[np.triu_indices(3, 1)].mean())
    spans = np.asarray(spans)[which]
    inner = ~corner
    return Result(
        metrics={"stray": float(np.mean(distance[inner] / spans[inner])),
                 "num_cells": float(inner.sum())},
        images={"triangles": imaging.image_grid(images)},
        arrays={"images": imaging.to_uint8(images), "weights": weights, "which": which,
                "triples": np.asarray(triples, np.int32), "view": np.asarray([az, el])},
        info={"view": [az, el], "triples": [list(t) for t in triples]})
