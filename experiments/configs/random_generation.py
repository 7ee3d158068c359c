r"""Section 5.6, Figure 17 (a)-(h): random chairs from the deterministic net and the VAEs.

`python -m experiments.random_generation --config=experiments/configs/random_generation.py:<scale>`

The deterministic net is section 4.2's 1s-S-deep chairs run; the VAEs (Appendix A) are trained
as it, with KL weight x10 (Figure 17 e) and x1 (f). FC2 noise in the deterministic net (g, h)
has standard deviation 1x and 3x the RMS of that net's own FC2 activations over the training
chairs (fixed before any run; `chairgen.evaluators.random_samples`).

Variant `long_vae` (`random_generation.py:tiny,long_vae`, its own report): the same with the
VAEs trained 3x as long, added after the `tiny` VAEs ended with 4x the deterministic net's
held-out error (undertrained), so that (e) vs (f) is also measured on VAEs that learnt more.
"""

import ml_collections

from chairgen import experiment

from experiments.configs import runs

LONG_VAE_FACTOR = 3
DETERMINISTIC = [
    {"name": "a", "kind": "softmax_gaussian", "sigma": 2.0},
    {"name": "b", "kind": "softmax_gaussian", "sigma": 4.0},
    {"name": "c", "kind": "mixture", "m": 3},
    {"name": "d", "kind": "mixture", "m": 5},
    {"name": "g", "kind": "fc2_noise", "scale": 1.0},
    {"name": "h", "kind": "fc2_noise", "scale": 3.0},
]


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  config = experiment.new_config(
      "random_generation", "5.6", "Random chair generation (Figure 17)", arg,
      variants=("long_vae",))
  scale = config.scale
  factor = experiment.longer_variant(config, "long_vae", LONG_VAE_FACTOR, "VAEs")
  chairs, chairs_run = runs.chairs_architecture(scale, "1s-S-deep")
  kl10, kl10_run = runs.chairs_vae(scale, 10.0, steps_factor=factor)
  kl1, kl1_run = runs.chairs_vae(scale, 1.0, steps_factor=factor)
  for name, run in ((chairs, chairs_run), (kl10, kl10_run), (kl1, kl1_run)):
    config.runs[name] = run
  config.groups = ml_collections.ConfigDict({"deterministic": chairs, "e": kl10, "f": kl1})
  # test: 4 chairs, so M = 5 is impossible there; M = 3 and 4.
  methods = [dict(m, m=4) if scale == "test" and m.get("m") == 5 else m for m in DETERMINISTIC]
  common = {"type": "random_samples", "num_samples": 32 if scale == "test" else 256,
            "figure_samples": 8, "azimuth": 34.0, "elevation": 20.0}
  config.evals = ml_collections.ConfigDict({
      "deterministic": dict(common, methods=methods, runs=[chairs]),
      "vae": dict(common, methods=[{"name": "prior", "kind": "vae_prior"}], runs=[kl10, kl1]),
  })
  return config
