"""Random chairs and how diverse, novel and sharp they are: Figure 17 (section 5.6).

`methods` lists samplers by name, each {name, kind, ...}:

  softmax_gaussian  sigma: style input = softmax of N(0, σ²) noise (Figure 17 a, b: σ = 2, 4)
  mixture           m: M random training styles, coefficients ~ U[0, 1] summing to 1 (c, d)
  vae_prior         z ~ N(0, I) in place of FC2 of a VAE (e, f: KL weight x10, x1)
  fc2_noise         scale: N(0, (scale · r)²) in place of FC2 of the deterministic net (g, h),
                    r the RMS of the net's own FC2 activations over the training chairs
                    (sqrt of the mean square over chairs and units; metric fc2_rms), so the
                    standard deviations are set relative to the regime the layer was trained in

Every sample is drawn at one view, the stored training view nearest to (`azimuth`,
`elevation`); `num_samples` per method, method keys fold_in(key, crc32(name)). Measures
(images on white, RMS distances as `chairgen.style_space`):

  diversity  mean pairwise RMS distance between the samples
  novelty    mean RMS distance of each sample to its nearest training image at that view
  copies     fraction of samples whose nearest training image is at most as far as the net's
             median reconstruction distance (its one-hot generation of a training chair to that
             chair's own image): samples as close to a training chair as the net's copy of it
  sharpness  mean variance of the Laplacian of the grey image (style_space.sharpness)

Reference rows: `one_hot` (the net's generation of every training chair: copies by
construction) and `truth` (the training images at that view: diversity and sharpness of the
real chairs). Metrics: <measure>_<method> for every method and reference (truth has no
novelty or copies), copy_threshold, fc2_rms (when fc2_noise is used). Picture `samples`: per
method `figure_samples` samples above their nearest training images. Arrays: <method>_samples,
<method>_neighbours (uint8), <method>_novelty and <method>_diversity (per sample: distance to
its nearest training image, mean distance to the other samples), view.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np

from chairgen import imaging
from chairgen import style_space
from chairgen.evaluators import Result

KINDS = {"softmax_gaussian": ("sigma",), "mixture": ("m",), "vae_prior": (),
         "fc2_noise": ("scale",)}


def _check_method(method) -> dict:
  method = dict(method)
  kind = method.get("kind")
  if "name" not in method or kind not in KINDS:
    raise ValueError(f"a method is {{name, kind, ...}} with kind one of {sorted(KINDS)}, got "
                     f"{method!r}")
  missing = [k for k in KINDS[kind] if k not in method]
  if missing:
    raise ValueError(f"method {method['name']!r} ({kind}) needs {missing}")
  return method


class Evaluator:

  def __init__(self, methods=(), num_samples: int = 256, figure_samples: int = 8,
               azimuth: float = 34.0, elevation: float = 20.0):
    self.methods = [_check_method(m) for m in methods]
    if not self.methods:
      raise ValueError("methods must list at least one sampler")
    if num_samples < 2 or not 1 <= figure_samples <= num_samples:
      raise ValueError(f"need num_samples >= 2 and 1 <= figure_samples <= num_samples, got "
                       f"{num_samples}, {figure_samples}")
    self.num_samples, self.figure_samples = int(num_samples), int(figure_samples)
    self.azimuth, self.elevation = float(azimuth), float(elevation)

  def sample(self, trained, method: dict, key, fc2_rms: float | None, az, el):
    """The method's `num_samples` images (composited on white)."""
    n, m, kind = self.num_samples, trained.num_styles, method["kind"]
    azimuths, elevations = np.full(n, az), np.full(n, el)
    if kind == "softmax_gaussian":
      styles = style_space.softmax_gaussian_styles(key, n, m, float(method["sigma"]))
      return trained.generate(styles, azimuths, elevations, rng=key).composite
    if kind == "mixture":
      styles = style_space.random_mixture_styles(key, n, m, int(method["m"]))
      return trained.generate(styles, azimuths, elevations, rng=key).composite
    if kind == "vae_prior":
      if not trained.config.model.get("vae", False):
        raise ValueError(f"method {method['name']!r} samples a VAE's prior; this run is not a "
                         "VAE (list it under `runs` of a VAE run only)")
      return trained.generate(np.zeros((n, m), np.float32), azimuths, elevations, rng=key,
                              vae_z="prior").composite
    shape = trained.layer_shapes()["style_fc2"]
    noise = style_space.gaussian_features(key, n, shape, float(method["scale"]) * fc2_rms)
    return style_space.generate_from_features(trained, noise, "style_fc2", azimuths, elevations,
                                              rng=key).composite

  def run(self, trained, rng) -> Result:
    bank = style_space.TrainingViews(trained.data)
    az, el = bank.nearest_view(self.azimuth, self.elevation)
    ids, truth = bank.at_view(az, el)
    truth_styles = bank.styles(ids)
    one_hot = trained.generate(trained.one_hot(truth_styles), np.full(len(ids), az),
                               np.full(len(ids), el), rng=rng).composite
    reconstruction = np.sqrt(np.mean(np.square(one_hot - truth).reshape(len(ids), -1), axis=1))
    threshold = float(np.median(reconstruction))
    fc2_rms = None
    if any(m["kind"] == "fc2_noise" for m in self.methods):
      acts = style_space.style_features(trained, trained.one_hot(truth_styles), "style_fc2")
      fc2_rms = float(np.sqrt(np.mean(np.square(acts))))
    metrics = {"copy_threshold": threshold, "diversity_truth": style_space.diversity(truth),
               "sharpness_truth": float(style_space.sharpness(truth).mean())}
    if fc2_rms is not None:
      metrics["fc2_rms"] = fc2_rms
    arrays, rows = {"view": np.asarray([az, el])}, []
    named = [("one_hot", one_hot)] + [
        (m["name"], self.sample(trained, m, jax.random.fold_in(rng, zlib.crc32(
            m["name"].encode()) & 0x7FFFFFFF), fc2_rms, az, el)) for m in self.methods]
    for name, images in named:
      found = bank.nearest(images, az, el)
      metrics[f"diversity_{name}"], arrays[f"{name}_diversity"] = style_space.diversity(
          images, per_image=True)
      metrics[f"novelty_{name}"] = float(found.distance.mean())
      metrics[f"copies_{name}"] = float(np.mean(found.distance <= threshold))
      metrics[f"sharpness_{name}"] = float(style_space.sharpness(images).mean())
      k = min(self.figure_samples, len(images))
      arrays[f"{name}_samples"] = imaging.to_uint8(images[:k])
      arrays[f"{name}_neighbours"] = imaging.to_uint8(found.images[:k])
      arrays[f"{name}_novelty"] = found.distance
      if name != "one_hot":
        rows += [images[:k], found.images[:k]]
    return Result(metrics=metrics, images={"samples": imaging.image_grid(np.stack(rows))},
                  arrays=arrays, info={"view": [az, el], "methods": self.methods})
