"""`chairgen.optimizer`: the one-pass Adam update equals optax's Adam, step after step and across
the learning-rate schedule's halvings, leaves the state alone where the step was not finite, and
runs only where it can."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax.training import train_state

from chairgen import optimizer
from chairgen.models.cpu_kernels import onednn

needs_native = pytest.mark.skipif(not onednn.available(),
                                  reason=f"native library unavailable: {onednn.unavailable_reason()}")


def opt_config(**overrides) -> ml_collections.ConfigDict:
  # The paper's Adam; a schedule halving after steps 2 and 4 so that the test crosses two.
  return ml_collections.ConfigDict(dict(
      learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-6, num_steps=7, decay_start=2,
      decay_every=2, decay_factor=0.5) | overrides)


def make_state(opt, seed=0):
  keys = jax.random.split(jax.random.key(seed), 3)
  params = {"dense": {"kernel": jax.random.normal(keys[0], (300, 257)),   # > one thread's size
                      "bias": jax.random.normal(keys[1], (257,))},
            "conv": {"kernel": jax.random.normal(keys[2], (3, 3, 4, 5))}}
  return train_state.TrainState.create(apply_fn=None, params=params,
                                       tx=optimizer.create_optimizer(opt))


def gradients(state, t):
  """Gradients of varying sign and scale, different every step."""
  return jax.tree.map(lambda p: jnp.sin(p * (t + 1.0)) * 10.0 ** (t % 3 - 1), state.params)


def optax_step(state, grads, finite):
  new = state.apply_gradients(grads=grads)
  return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, state)


def assert_states_close(a, b):
  assert int(a.step) == int(b.step)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), a.opt_state[0].count,
               b.opt_state[0].count)
  for x, y in zip(jax.tree.leaves((a.params, a.opt_state)), jax.tree.leaves((b.params, b.opt_state))):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-6, atol=1e-9)


@needs_native
def test_native_path_is_taken_here():
  assert optimizer.uses_native_update(make_state(opt_config()))


@needs_native
@pytest.mark.parametrize("donate", [True, False])   # in place, and through XLA's copies
def test_native_update_equals_optax_adam_across_the_schedule(donate):
  opt = opt_config()
  step = jax.jit(lambda s, g, f: optimizer.apply_gradients(s, g, f, opt),
                 donate_argnums=(0,) if donate else ())
  ours, reference = make_state(opt), make_state(opt)
  finite = jnp.asarray(True)
  for t in range(opt.num_steps):
    grads = gradients(reference, t)
    reference = jax.jit(optax_step)(reference, grads, finite)
    ours = step(ours, grads, finite)
    assert_states_close(ours, reference)
  # The parameters moved: the comparison was not between two unchanged states.
  assert not np.allclose(ours.params["dense"]["kernel"], make_state(opt).params["dense"]["kernel"])


@needs_native
@pytest.mark.parametrize("donate", [True, False])
def test_a_step_that_is_not_finite_changes_nothing(donate):
  opt = opt_config()
  step = jax.jit(lambda s, g, f: optimizer.apply_gradients(s, g, f, opt),
                 donate_argnums=(0,) if donate else ())
  state = step(make_state(opt), gradients(make_state(opt), 0), jnp.asarray(True))
  before = jax.tree.map(np.asarray, (state.step, state.params, state.opt_state))
  grads = jax.tree.map(lambda g: g.at[0].set(jnp.nan), gradients(state, 1))
  after = step(state, grads, jnp.asarray(False))
  jax.tree.map(np.testing.assert_array_equal, before,
               jax.tree.map(np.asarray, (after.step, after.params, after.opt_state)))


@needs_native
def test_the_update_is_written_in_place_of_the_donated_state():
  opt = opt_config()
  state = make_state(opt)
  step = jax.jit(lambda s, g, f: optimizer.apply_gradients(s, g, f, opt), donate_argnums=(0,))
  hlo = step.lower(state, gradients(state, 0), jnp.asarray(True)).compile().as_text()
  assert onednn.ADAM_TARGET in hlo
  assert "output_to_operand_aliasing" in hlo
  # No copy of a parameter-sized buffer: the moments and parameters are updated in place.
  assert not any("f32[300,257]" in line and " copy(" in line for line in hlo.splitlines())


def test_optax_runs_where_the_native_update_cannot(monkeypatch):
  opt = opt_config()
  monkeypatch.setenv(optimizer.ENV_SWITCH, "0")
  assert not optimizer.uses_native_update(make_state(opt))
  monkeypatch.delenv(optimizer.ENV_SWITCH)
  sgd = train_state.TrainState.create(apply_fn=None, params=make_state(opt).params,
                                      tx=optax.sgd(1e-2))
  assert not optimizer.uses_native_update(sgd)   # another optimiser's state
  nadam = train_state.TrainState.create(apply_fn=None, params=make_state(opt).params,
                                        tx=optax.nadam(1e-3))
  assert not optimizer.uses_native_update(nadam)   # Adam's state types, not the paper's Adam
  # ... and apply_gradients is then optax's own update.
  grads = gradients(sgd, 0)
  np.testing.assert_allclose(
      optimizer.apply_gradients(sgd, grads, jnp.asarray(True), opt).params["conv"]["kernel"],
      sgd.apply_gradients(grads=grads).params["conv"]["kernel"])

