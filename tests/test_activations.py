"""Reading and replacing named activations (sections 5.5, 5.6, 6.1, 6.2)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chairgen import models
from chairgen.models import activations

NUM_STYLES = 5
THETA_DIM = 8
key = functools.partial(jax.random.key, impl="rbg")   # fast to compile on the CPU


def make(name="1s-S-deep", vae=False):
  config = models.default_config()
  config.name = name
  config.vae = vae
  config.width_multiplier = 0.125
  return models.create_model(config, NUM_STYLES, 32, THETA_DIM)


@functools.lru_cache(maxsize=None)
def setup(name="1s-S-deep", vae=False):
  """(model, variables), initialised once per module."""
  model = make(name, vae)
  variables = jax.jit(model.init)({"params": key(0), "sample": key(1)}, *inputs())
  return model, variables


def inputs(batch=2):
  style = jax.nn.one_hot(jnp.arange(batch) % NUM_STYLES, NUM_STYLES)
  view = jnp.tile(jnp.array([[0.0, 1.0, 0.5, 0.866]]), (batch, 1))
  theta = jnp.tile(jnp.linspace(-0.5, 0.5, THETA_DIM), (batch, 1))   # same view and θ
  return style, view, theta


def run(model, variables, **kwargs):
  return activations.apply(model, variables, *inputs(), **kwargs)


def test_layer_names():
  model = make()
  assert activations.layer_names(model) == (
      "style_fc1", "style_fc2", "view_fc1", "view_fc2", "theta_fc1", "theta_fc2", "fc3", "fc4",
      "fc5", "upconv1", "conv1", "upconv2")
  two_stream = make("2s-E")
  assert activations.layer_names(two_stream)[8:] == (
      "rgb_fc5", "rgb_upconv1", "rgb_upconv2", "mask_fc5", "mask_upconv1", "mask_upconv2")
  vae = make(vae=True)
  assert activations.layer_names(vae)[:4] == ("style_fc1", "z_mean", "z_logvar", "style_fc2")


def test_reading_returns_every_layer_with_its_shape():
  model, variables = setup()
  outputs, acts = run(model, variables)
  assert tuple(acts) == activations.layer_names(model)
  assert acts["style_fc1"].shape == (2, 64)          # 512 * 0.125
  assert acts["fc4"].shape == (2, 128)               # 1024 * 0.125
  assert acts["fc5"].shape == (2, 8, 8, 32)          # 8 x 8 x 256 * 0.125
  assert acts["upconv1"].shape == acts["conv1"].shape == (2, 16, 16, 32)
  assert acts["upconv2"].shape == (2, 32, 32, 3 + 2)
  assert float(acts["fc3"].min()) >= 0.0             # after ReLU
  np.testing.assert_array_equal(acts["upconv2"][..., :3], outputs["rgb"])
  np.testing.assert_array_equal(acts["upconv2"][..., 3:], outputs["mask_logits"])


def test_reading_a_subset():
  model, variables = setup()
  _, acts = run(model, variables, capture=["fc5", "style_fc2"])
  assert set(acts) == {"fc5", "style_fc2"}


@pytest.mark.parametrize("name", ["1s-S-deep", "2s-E"])
def test_replacing_every_layer_with_its_own_value_changes_nothing(name):
  model, variables = setup(name)
  outputs, acts = run(model, variables)
  for layer, value in acts.items():
    replaced = model.apply(variables, *inputs(), replace={layer: value})
    for key_ in outputs:
      np.testing.assert_allclose(replaced[key_], outputs[key_], rtol=1e-6, atol=1e-6,
                                 err_msg=layer)


@pytest.mark.parametrize("layer", ["style_fc1", "fc4", "fc5", "conv1"])
def test_replacing_with_zeros_changes_the_output(layer):
  model, variables = setup()
  outputs, acts = run(model, variables)
  replaced, new_acts = run(model, variables, replace={layer: jnp.zeros(())})
  assert float(jnp.abs(new_acts[layer]).max()) == 0.0
  assert float(jnp.abs(replaced["rgb"] - outputs["rgb"]).max()) > 1e-4
  # Layers before it are untouched.
  np.testing.assert_array_equal(new_acts["view_fc1"], acts["view_fc1"])


def test_callable_is_applied_to_the_computed_output():
  """Section 6.2: keep only the central 4x4 window of the 8x8 FC5 maps."""
  model, variables = setup()
  window = jnp.zeros((8, 8, 1)).at[2:6, 2:6].set(1.0)
  _, acts = run(model, variables)
  _, new_acts = run(model, variables, replace={"fc5": lambda a: a * window})
  np.testing.assert_allclose(new_acts["fc5"], acts["fc5"] * window)
  assert float(jnp.abs(new_acts["upconv1"] - acts["upconv1"]).max()) > 0


def test_single_unit_activation():
  """Section 6.1: all FC4 units zero but one."""
  model, variables = setup()
  unit = jnp.zeros((128,)).at[7].set(5.0)
  _, acts = run(model, variables, replace={"fc4": unit})
  np.testing.assert_array_equal(acts["fc4"], jnp.broadcast_to(unit, (2, 128)))


def test_feature_arithmetic_on_fc2():
  """Section 5.5: FC2(a) - FC2(b) + FC2(c) in place of the style stream's FC2."""
  model, variables = setup()
  _, acts = run(model, variables)
  fc2 = acts["style_fc2"]
  mixed = fc2[0] - fc2[1] + fc2[0]
  outputs, new_acts = run(model, variables, replace={"style_fc2": mixed})
  np.testing.assert_allclose(new_acts["style_fc2"], jnp.stack([mixed, mixed]))
  np.testing.assert_allclose(outputs["rgb"][0], outputs["rgb"][1], rtol=1e-6, atol=1e-6)


def test_gaussian_noise_in_style_fc2_ignores_the_style():
  """Section 5.6 (Figure 17 e-h): z ~ N(0, I) in FC2 of the style stream, for both kinds."""
  for vae in (False, True):
    model, variables = setup(vae=vae)
    z = jax.random.normal(key(4), (2, 512 if vae else 64))
    style, view, theta = inputs()
    kwargs = {"rngs": {"sample": key(5)}} if vae else {}
    a = model.apply(variables, style, view, theta, replace={"style_fc2": z}, **kwargs)
    b = model.apply(variables, style[::-1], view, theta, replace={"style_fc2": z}, **kwargs)
    np.testing.assert_allclose(a["rgb"], b["rgb"], rtol=1e-6, atol=1e-6)


def test_works_under_jit_with_traced_replacements():
  model, variables = setup()
  _, acts = run(model, variables)

  @jax.jit
  def generate(variables, value):
    return activations.apply(model, variables, *inputs(), capture=["fc4"],
                             replace={"fc4": value, "fc5": lambda a: 0.5 * a})

  outputs, got = generate(variables, acts["fc4"] * 2.0)
  eager, want = run(model, variables, capture=["fc4"],
                    replace={"fc4": acts["fc4"] * 2.0, "fc5": lambda a: 0.5 * a})
  np.testing.assert_allclose(got["fc4"], want["fc4"])
  np.testing.assert_allclose(outputs["rgb"], eager["rgb"], rtol=1e-5, atol=1e-5)


def test_errors_name_the_problem():
  model, variables = setup()
  with pytest.raises(ValueError, match="unknown layer name.*'fc6'.*style_fc1"):
    model.apply(variables, *inputs(), replace={"fc6": 0.0})
  with pytest.raises(ValueError, match="unknown layer name.*'upconv9'"):
    run(model, variables, capture=["upconv9"])
  with pytest.raises(ValueError, match="does not broadcast"):
    model.apply(variables, *inputs(), replace={"fc4": jnp.zeros((3,))})
  with pytest.raises(ValueError, match="returned shape"):
    model.apply(variables, *inputs(), replace={"fc4": lambda a: a[:, :3]})
