"""Feature arithmetic at the style input, FC1 and FC2, against counterfactual ground truth:
Figure 16 (section 5.5) and the measurement the paper could not make.

An attribute is a factor of the procedural chairs and a change of its value, e.g.
{name: no_arms, factor: armrests, from: true, to: false}. The base chairs are training
chairs whose factor has the `from` value (at most `max_bases`, in style order). For a base b
and a layer L, the arithmetic result is features_L(b) + Δ_L, drawn at `views` (each snapped to
the nearest stored training view), with Δ_L from one of two `differences`:

  pair  features_L(y) - features_L(x) for the most similar pair of other training chairs x
        (with `from`) and y (with `to`): smallest mean RMS distance of their stored views at
        `views`. The paper's protocol ("armchair - chair + chair"), the pair found by
        measurement instead of by hand.
  mean  mean features_L over the training chairs with `to` minus the mean over those with
        `from` (the base left out): an attribute vector.

The counterfactual ground truth is the base chair rendered by `chairgen.procedural` with only
that factor changed (`make_object(..., overrides={factor: to})`), at the same views and size
as the dataset. Metrics per attribute A, layer L, difference D:

  mse_A_L_D          MSE of the result to the counterfactual truth (lower: the arithmetic
                     produced the chair it should)
  mse_A_unchanged    MSE of the base chair's own generation to it (doing nothing)
  mse_A_truth        MSE of the base chair's true views to it (how much the factor changes
                     the image)
  ratio_A_L_D        mse_A_L_D / mse_A_unchanged (< 1: the arithmetic moved toward the truth)

MSE is `_common.image_mse` (images on white). Attributes without two `from` chairs and one
`to` chair among the training chairs are skipped (info['skipped']). Picture `figure16`: per
attribute two rows at the first view, pair then mean: base, x, y, the results at each layer,
the counterfactual truth (x and y white in the mean row). Arrays: A_figure (uint8 rows),
A_mse (per base, f64[bases, layers, differences]), A_unchanged (per base).
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import style_space
from chairgen.evaluators import Result
from chairgen.evaluators import _common

DIFFERENCES = ("pair", "mean")


def _check_attribute(a) -> dict:
  a = dict(a)
  missing = [k for k in ("name", "factor", "from", "to") if k not in a]
  if missing or a["from"] == a["to"]:
    raise ValueError(f"an attribute is {{name, factor, from, to}} with from != to, got {a!r}")
  return a


class Evaluator:

  def __init__(self, attributes=(), layers=style_space.LAYERS, differences=DIFFERENCES,
               views=((34.0, 20.0),), max_bases: int = 8):
    self.attributes = [_check_attribute(a) for a in attributes]
    if not self.attributes:
      raise ValueError("attributes must list at least one {name, factor, from, to}")
    for layer in layers:
      style_space.check_layer(layer)
    unknown = [d for d in differences if d not in DIFFERENCES]
    if unknown or not differences:
      raise ValueError(f"differences must be a non-empty subset of {DIFFERENCES}, got "
                       f"{differences!r}")
    if max_bases < 1 or not views:
      raise ValueError("need max_bases >= 1 and at least one view")
    self.layers, self.differences = tuple(layers), tuple(differences)
    self.views = [tuple(float(x) for x in v) for v in views]
    self.max_bases = int(max_bases)

  def run(self, trained, rng) -> Result:
    bank = style_space.TrainingViews(trained.data)
    views = [bank.nearest_view(a, e) for a, e in self.views]
    az, el = (np.asarray(c) for c in zip(*views))
    models = style_space.procedural_models(trained)
    train_styles = style_space.training_styles(trained)
    size, v = trained.image_size, len(views)
    features = {layer: style_space.style_features(trained, trained.one_hot(train_styles), layer)
                for layer in self.layers}
    row_of = {int(s): i for i, s in enumerate(train_styles)}
    metrics, images, arrays, skipped, used = {}, {}, {}, [], {}
    for attr in self.attributes:
      name, factor = attr["name"], attr["factor"]
      values = [m.factors.get(factor) for m in models]
      if all(x is None for x in values):
        raise ValueError(f"attribute {name}: these models have no factor {factor!r}; "
                         f"factors: {sorted(models[0].factors)}")
      sources = [int(s) for s in train_styles if values[s] == attr["from"]]
      targets = [int(s) for s in train_styles if values[s] == attr["to"]]
      if len(sources) < 2 or not targets:
        skipped.append(f"{name}: {len(sources)} training chairs with {factor}={attr['from']!r} "
                       f"and {len(targets)} with {attr['to']!r} (need 2 and 1)")
        continue
      truth = {s: _common.stored_truth(trained.data, np.full(v, s), az, el, size)[0]
               for s in sources + targets}
      pair_cost = {(x, y): float(np.mean(_common.image_mse(truth[x], truth[y])))
                   for x in sources for y in targets}
      x_pair, y_pair = min(pair_cost, key=pair_cost.get)
      bases = [s for s in sources if s != x_pair][:self.max_bases]
      used[name] = {"pair": [x_pair, y_pair], "bases": bases}
      per = {key: [] for key in ["unchanged", "truth"] + [f"{l}_{d}" for l in self.layers
                                                          for d in self.differences]}
      figure = {}
      for base in bases:
        counterfactual = style_space.render_procedural(models[base], views, size,
                                                       {factor: attr["to"]})
        unchanged = trained.generate(trained.one_hot(np.full(v, base)), az, el, rng=rng).composite
        per["unchanged"].append(_common.image_mse(unchanged, counterfactual).mean())
        per["truth"].append(_common.image_mse(truth[base], counterfactual).mean())
        results = {}
        for layer in self.layers:
          f = features[layer]
          for d in self.differences:
            if d == "pair":
              delta = f[row_of[y_pair]] - f[row_of[x_pair]]
            else:
              rest = [row_of[s] for s in sources if s != base]
              delta = f[[row_of[s] for s in targets]].mean(0) - f[rest].mean(0)
            out = style_space.generate_from_features(
                trained, np.repeat(f[row_of[base]][None] + delta[None], v, axis=0), layer,
                az, el, rng=rng).composite
            per[f"{layer}_{d}"].append(_common.image_mse(out, counterfactual).mean())
            results[(layer, d)] = out[0]
        if not figure:
          figure = {"base": unchanged[0], "truth": counterfactual[0], "results": results}
      metrics[f"mse_{name}_unchanged"] = float(np.mean(per["unchanged"]))
      metrics[f"mse_{name}_truth"] = float(np.mean(per["truth"]))
      for layer in self.layers:
        for d in self.differences:
          value = float(np.mean(per[f"{layer}_{d}"]))
          metrics[f"mse_{name}_{layer}_{d}"] = value
          metrics[f"ratio_{name}_{layer}_{d}"] = value / max(metrics[f"mse_{name}_unchanged"],
                                                             1e-12)
      blank = np.ones((size, size, 3), np.float32)
      pair_images = trained.generate(trained.one_hot([x_pair, y_pair]), az[:1].repeat(2),
                                     el[:1].repeat(2), rng=rng).composite
      rows = []
      for d in self.differences:
        left = list(pair_images) if d == "pair" else [blank, blank]
        rows.append([figure["base"]] + left + [figure["results"][(l, d)] for l in self.layers]
                    + [figure["truth"]])
      arrays[f"{name}_figure"] = imaging.to_uint8(np.asarray(rows))
      arrays[f"{name}_mse"] = np.asarray([[per[f"{l}_{d}"] for d in self.differences]
                                          for l in self.layers]).transpose(2, 0, 1)
      arrays[f"{name}_unchanged"] = np.asarray(per["unchanged"])
      metrics[f"num_bases_{name}"] = float(len(bases))
    if not arrays:
      raise ValueError("no attribute could be measured on this run: " + "; ".join(skipped))
    images["figure16"] = imaging.image_grid(np.concatenate(
        [imaging.to_float(arrays[f"{a['name']}_figure"]) for a in self.attributes
         if f"{a['name']}_figure" in arrays]))
    return Result(metrics=metrics, images=images, arrays=arrays,
                  info={"views": [list(x) for x in views], "skipped": skipped,
                        "layers": list(self.layers), "differences": list(self.differences),
                        "chairs": used})
