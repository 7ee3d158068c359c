"""The stochastic style stream of Appendix A.

q(z | c) is two fully connected layers: `style_fc1` (512 units, ReLU, shared with the
deterministic net) and the linear heads `z_mean`, `z_logvar` (latent_dim each) that take the
place of `style_fc2`.  The named layer `style_fc2` of a VAE is `GaussianLatent`: it draws
z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from the 'sample' rng (reparameterisation, so
gradients reach q), so that replacing `style_fc2` is what section 5.6 does for both kinds of
network ("replace the FC2 activations of the style stream by Gaussian noise").
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from chairgen.models import layers

Array = jax.Array
SAMPLE_RNG = "sample"


class GaussianLatent(layers.Layer):
  """(mean, logvar) f[B, D] -> z f[B, D]; no parameters.

  sample_prior: draw z ~ N(0, I) instead of from q(z|c).
  deterministic: return the posterior mean (for evaluation); otherwise a 'sample' rng is
  required.
  """

  @nn.compact
  def __call__(self, mean_BxD: Array, logvar_BxD: Array, *, sample_prior: bool = False,
               deterministic: bool = False) -> Array:
    if deterministic and not sample_prior:
      return mean_BxD
    if not self.has_rng(SAMPLE_RNG):
      raise ValueError(
          "the VAE draws z from q(z|c) or N(0, I): pass rngs={'sample': key} to model.apply, "
          "or deterministic=True to decode the posterior mean")
    eps = jax.random.normal(self.make_rng(SAMPLE_RNG), mean_BxD.shape, jnp.float32)
    if sample_prior:
      return eps.astype(mean_BxD.dtype)
    return mean_BxD + jnp.exp(0.5 * logvar_BxD) * eps.astype(mean_BxD.dtype)
