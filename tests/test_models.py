"""The generator: variants, sizes, parameter counts, initialisation, dtypes, VAE, errors."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from chairgen import losses
from chairgen import models
from chairgen.models import layers

NUM_STYLES = 6
THETA_DIM = 8
TINY = 0.125
# rbg keys compile far faster than threefry on the CPU (seconds per model init).
key = functools.partial(jax.random.key, impl="rbg")
PAPER_PARAMS = {"1s-S-deep": 19e6, "1s-S": 18e6, "1s-S-wide": 23e6, "2s-S": 27e6,
                "2s-E": 27e6}   # Table 1: the expanding part at 128 px


def make(name="1s-S-deep", image_size=32, width=TINY, **overrides):
  config = models.default_config()
  config.name = name
  config.width_multiplier = width
  for key, value in overrides.items():
    config[key] = value
  return config, models.create_model(config, NUM_STYLES, image_size, THETA_DIM)


def inputs(batch=2, seed=0):
  style = jax.nn.one_hot(jnp.arange(batch) % NUM_STYLES, NUM_STYLES)
  angles = jax.random.uniform(key(seed), (batch, 2), maxval=2 * np.pi)
  view = jnp.concatenate([jnp.sin(angles[:, :1]), jnp.cos(angles[:, :1]),
                          jnp.sin(angles[:, 1:]), jnp.cos(angles[:, 1:])], axis=1)
  theta = jax.random.normal(key(seed + 1), (batch, THETA_DIM)) * 0.1
  return style, view, theta


def init(model, batch=2):
  """Initialises under jit (one compilation instead of one per parameter)."""
  rngs = {"params": key(0), "sample": key(1)}
  return jax.jit(model.init)(rngs, *inputs(batch))


@functools.lru_cache(maxsize=None)
def cached(name="1s-S-deep", vae=False, **overrides):
  """(config, model, variables, jitted apply) of a tiny 32 px model, shared between tests."""
  config, model = make(name, vae=vae, **overrides)
  apply = jax.jit(model.apply, static_argnames=("sample_prior", "deterministic"))
  return config, model, init(model), apply


def param_shapes(model):
  return jax.eval_shape(lambda: init(model))["params"]


def count(tree):
  return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))


def test_default_config():
  config = models.default_config()
  assert isinstance(config, ml_collections.ConfigDict)
  assert (config.name, config.vae, config.latent_dim, config.dtype, config.kernels) == (
      "1s-S-deep", False, 512, "float32", "auto")
  assert config.mask_loss is None
  assert [models.mask_loss_for(name) for name in PAPER_PARAMS] == [
      "nll", "nll", "nll", "nll", "euclidean"]


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_expanding_part_parameter_count_matches_table_1(name):
  _, model = make(name, image_size=128, width=1.0)
  params = param_shapes(model)
  expanding = count({n: params[n] for n in model.expanding_layer_names()})
  print(f"{name}: expanding part {expanding / 1e6:.2f}M parameters "
        f"(Table 1: {PAPER_PARAMS[name] / 1e6:.0f}M)")
  assert abs(expanding / PAPER_PARAMS[name] - 1) <= 0.10
  assert set(params) == set(model.layer_names())


def test_figure_1_shapes_of_1s_s_deep_at_128px():
  _, model = make(image_size=128, width=1.0)
  params = param_shapes(model)
  for stream, dim in (("style", NUM_STYLES), ("view", 4), ("theta", THETA_DIM)):
    assert params[f"{stream}_fc1"]["kernel"].shape == (dim, 512)
    assert params[f"{stream}_fc2"]["kernel"].shape == (512, 512)
  assert params["fc3"]["kernel"].shape == (3 * 512, 1024)
  assert params["fc4"]["kernel"].shape == (1024, 1024)
  assert params["fc5"]["kernel"].shape == (1024, 8 * 8 * 256)
  assert params["upconv1"]["kernel"].shape == (4, 4, 256, 256)
  assert params["conv1"]["kernel"].shape == (3, 3, 256, 256)
  assert params["upconv4"]["kernel"].shape == (4, 4, 48, 3 + 2)   # RGB + 2 mask logits
  assert "conv4" not in params


@pytest.mark.parametrize("image_size, n_upconvs", [(32, 2), (64, 3), (128, 4), (256, 5)])
def test_one_upconv_per_doubling(image_size, n_upconvs):
  _, model = make(image_size=image_size, width=TINY)
  names = model.expanding_layer_names()
  assert names[-1] == f"upconv{n_upconvs}"
  assert sum(n.startswith("upconv") for n in names) == n_upconvs
  assert sum(n.startswith("conv") for n in names) == n_upconvs - 1


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
@pytest.mark.parametrize("vae", [False, True])
def test_output_shapes(name, vae):
  _, model = make(name, vae=vae)
  variables = jax.eval_shape(lambda: init(model, batch=3))
  out = jax.eval_shape(lambda v: model.apply(v, *inputs(3), rngs={"sample": key(2)}),
                       variables)
  mask_channels = 1 if vae or name == "2s-E" else 2
  assert out["rgb"].shape == (3, 32, 32, 3) and out["rgb"].dtype == jnp.float32
  assert out["mask_logits"].shape == (3, 32, 32, mask_channels)
  assert out["mask_logits"].dtype == jnp.float32
  assert ("z_mean" in out) == vae
  if vae:
    assert out["z_mean"].shape == out["z_logvar"].shape == (3, 512)


@pytest.mark.parametrize("name, vae", [("1s-S", False), ("2s-E", False), ("1s-S", True)])
def test_mask_probability_of_each_head(name, vae):
  config, _, variables, apply = cached(name, vae)
  out = apply(variables, *inputs(), rngs={"sample": key(2)})
  prob = models.mask_probability(out, config)
  assert prob.shape == (2, 32, 32, 1)
  assert float(prob.min()) >= 0.0 and float(prob.max()) <= 1.0
  assert float(prob.max() - prob.min()) > 0
  np.testing.assert_allclose(prob, models.mask_probability(out), atol=1e-6)  # inferred head


def test_mask_probability_per_head():
  logits2 = jnp.array([[[[0.0, np.log(3.0)]]]])
  np.testing.assert_allclose(models.mask_probability({"mask_logits": logits2}), [[[[0.75]]]],
                             rtol=1e-6)
  raw = jnp.array([[[[-0.5]], [[0.3]], [[1.7]]]])
  np.testing.assert_allclose(models.mask_probability({"mask_logits": raw}),
                             jnp.clip(raw, 0, 1))
  vae_out = {"mask_logits": raw, "z_mean": jnp.zeros((1, 2))}
  np.testing.assert_allclose(models.mask_probability(vae_out), jax.nn.sigmoid(raw), rtol=1e-6)


def test_style_takes_any_vector():
  _, _, variables, apply = cached()
  style, view, theta = inputs(2)
  a = apply(variables, style, view, theta)["rgb"]
  mix = jnp.full((2, NUM_STYLES), 1.0 / NUM_STYLES)
  b = apply(variables, mix, view, theta)["rgb"]
  assert b.shape == a.shape and bool(jnp.all(jnp.isfinite(b)))
  assert float(jnp.abs(a - b).max()) > 1e-4


@pytest.mark.parametrize("layer, x_shape, fan_in", [
    (layers.Dense(1024), (1, 1024), 1024),
    (layers.Conv(256), (1, 4, 4, 256), 9 * 256),
    # the true fan-in of a stride-2 up-convolution: 2 * 2 * Cin of its 4 * 4 * Cin taps
    (layers.UpConv(256), (1, 4, 4, 256), 4 * 256),
])
def test_he_initialisation(layer, x_shape, fan_in):
  params = jax.jit(layer.init)(key(0), jnp.ones(x_shape))["params"]
  kernel = params["kernel"]
  np.testing.assert_allclose(float(jnp.std(kernel)), np.sqrt(2 / fan_in), rtol=0.02)
  assert abs(float(jnp.mean(kernel))) < 0.05 * np.sqrt(2 / fan_in)
  assert float(jnp.abs(params["bias"]).max()) == 0.0


def test_biases_start_at_zero():
  params = cached()[2]["params"]
  assert all(float(jnp.abs(p["bias"]).max()) == 0.0 for p in params.values())


@pytest.mark.parametrize("name,kernels", [("1s-S-deep", "xla"), ("2s-E", "xla"),
                                          ("1s-S-deep", "jax")])
def test_kernel_switches_compute_the_same_net_from_the_same_parameters(name, kernels):
  """'auto' (the CPU kernels here), 'xla' and 'jax': one parameter tree, the same outputs."""
  _, auto_model, variables, auto = cached(name)
  _, xla_model, xla_variables, xla = cached(name, kernels=kernels)
  assert jax.tree.structure(variables) == jax.tree.structure(xla_variables)
  a, b = auto(variables, *inputs()), xla(variables, *inputs())
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-4)


def test_legacy_kernel_fields_of_old_run_configs_are_accepted():
  config = models.default_config()
  config.upconv_impl, config.conv_impl = "phase4", "winograd4"  # an old run_info.json's
  model = models.create_model(config, num_styles=3, image_size=32)
  assert model.kernels == "auto"


def test_bfloat16_compute_keeps_float32_params():
  _, _, variables, f32 = cached("1s-S-deep")
  _, _, bf16_variables, bf16 = cached("1s-S-deep", dtype="bfloat16")
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(bf16_variables))
  a = f32(variables, *inputs())
  b = bf16(variables, *inputs())
  assert b["rgb"].dtype == jnp.float32
  scale = float(jnp.abs(a["rgb"]).max())
  assert float(jnp.abs(a["rgb"] - b["rgb"]).max()) < 0.1 * scale


def test_jit_and_gradients():
  _, model, variables, _ = cached("2s-S")

  @jax.jit
  def loss(params):
    out = model.apply({"params": params}, *inputs())
    return jnp.mean(out["rgb"] ** 2) + jnp.mean(out["mask_logits"] ** 2)

  grads = jax.grad(loss)(variables["params"])
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["mask_fc5"]["kernel"]).sum()) > 0
  assert float(jnp.abs(grads["style_fc1"]["kernel"]).sum()) > 0


# ----------------------------------------------------------------------------- VAE

def test_vae_sampling_modes():
  _, model, variables, apply = cached("1s-S", vae=True)
  style, view, theta = inputs()
  other_style = jnp.roll(style, 1, axis=1)

  def rgb(style, **kwargs):
    return apply(variables, style, view, theta, **kwargs)["rgb"]

  key1, key2 = key(10), key(11)
  # A posterior sample depends on the noise; the mean does not.
  assert float(jnp.abs(rgb(style, rngs={"sample": key1})
                       - rgb(style, rngs={"sample": key2})).max()) > 1e-5
  np.testing.assert_array_equal(rgb(style, deterministic=True),
                                rgb(style, deterministic=True, rngs={"sample": key2}))
  # z ~ N(0, I) ignores the style.
  np.testing.assert_allclose(rgb(style, sample_prior=True, rngs={"sample": key1}),
                             rgb(other_style, sample_prior=True, rngs={"sample": key1}))
  with pytest.raises(ValueError, match="rngs=\\{'sample'"):
    model.apply(variables, style, view, theta)


def test_vae_reparameterisation_reaches_the_posterior():
  _, model, variables, _ = cached("1s-S", vae=True)

  @jax.jit
  def loss(params):
    out = model.apply({"params": params}, *inputs(), rngs={"sample": key(3)})
    return jnp.sum(out["rgb"] ** 2)   # no KL term: gradient only through the sampled z

  grads = jax.grad(loss)(variables["params"])
  assert float(jnp.abs(grads["z_mean"]["kernel"]).sum()) > 0
  assert float(jnp.abs(grads["z_logvar"]["kernel"]).sum()) > 0


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("size", [0, 16, 48, 100, 120])
def test_unsupported_image_size(size):
  with pytest.raises(ValueError, match="8 \\* 2\\*\\*n"):
    make(image_size=size)


@pytest.mark.parametrize("overrides, match", [
    ({"name": "3s-X"}, "unknown model variant '3s-X'.*1s-S-deep"),
    ({"dtype": "float16"}, "unknown model.dtype"),
    ({"kernels": "fft"}, "unknown model.kernels"),
    ({"mask_loss": "l1"}, "unknown model.mask_loss"),
    ({"vae": True, "mask_loss": "euclidean"}, "Bernoulli"),
    ({"width_multiplier": 0.0}, "width_multiplier"),
])
def test_bad_config(overrides, match):
  config = models.default_config()
  config.update(overrides)
  with pytest.raises(ValueError, match=match):
    models.create_model(config, NUM_STYLES, 32, THETA_DIM)


def test_unknown_config_field():
  config = models.default_config()
  config.depth = 3
  with pytest.raises(ValueError, match="unknown model config field.*depth"):
    models.create_model(config, NUM_STYLES, 32, THETA_DIM)


def test_mismatched_inputs():
  _, model, variables, _ = cached()
  style, view, theta = inputs(2)
  with pytest.raises(ValueError, match=r"style must have shape \[B, 6\]"):
    model.apply(variables, style[:, :5], view, theta)
  with pytest.raises(ValueError, match=r"style must have shape"):
    model.apply(variables, jnp.arange(2), view, theta)
  with pytest.raises(ValueError, match=r"view must have shape \[B, 4\]"):
    model.apply(variables, style, view[:, :2], theta)
  with pytest.raises(ValueError, match=r"theta must have shape \[B, 8\]"):
    model.apply(variables, style, view, theta[:, :3])
  with pytest.raises(ValueError, match="batch size"):
    model.apply(variables, style, view[:1], theta)
  with pytest.raises(ValueError, match="VAE only"):
    model.apply(variables, style, view, theta, sample_prior=True)


# ----------------------------------------------------------------------------- training

@pytest.mark.slow
@pytest.mark.parametrize("name, vae", [("1s-S-deep", False), ("1s-S", True)])
def test_loss_falls_on_a_tiny_batch(name, vae):
  """A few Adam steps on four fixed 32 px examples: the loss and its RGB term fall."""
  _, model = make(name, vae=vae, width=0.25)
  style, view, theta = inputs(4)
  yy, xx = np.mgrid[:32, :32]
  disc = ((yy - 16) ** 2 + (xx - 16) ** 2 < 100).astype(np.float32)
  mask = jnp.broadcast_to(disc[None, :, :, None], (4, 32, 32, 1))
  image = mask * jnp.array([0.8, 0.4, 0.2])
  config = losses.default_config()
  params = init(model, 4)["params"]
  tx = optax.adam(1e-3, eps=1e-6)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, key):
    def loss_fn(params):
      out = model.apply({"params": params}, style, view, theta, rngs={"sample": key})
      return losses.compute(out, image, mask, config)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss, metrics

  history = []
  for i in range(25):
    params, opt_state, loss, metrics = step(params, opt_state, key(i))
    history.append({k: float(v) for k, v in metrics.items()})
  first, last = history[0], history[-1]
  assert all(np.isfinite(list(m.values())).all() for m in history)
  # The VAE's Gaussian NLL may go negative, so compare drops with the initial magnitude.
  assert last["loss"] < first["loss"] - 0.5 * abs(first["loss"])
  assert last["rgb_loss"] < first["rgb_loss"] - 0.5 * abs(first["rgb_loss"])
