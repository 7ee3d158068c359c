"""The paper's optimiser (section 4.1): Adam and its step-halving schedule, applied in one pass.

`create_optimizer` is optax's Adam: its state is what every checkpoint holds. `apply_gradients`
is the train step's update: the same arithmetic as `TrainState.apply_gradients` with that
optax transformation, but it leaves the state unchanged where the step was not finite, and on
the CPU it runs each parameter's update as one pass over memory (`adam.cc`, through the XLA
FFI): XLA:CPU compiles optax's update into one loop per result, each re-reading gradient and
moments, and copies the moments it overwrites, which cost a tenth of the 128 px float32 step
(docs/performance.md). Elsewhere (GPU, TPU, several devices, or where the native library is
unavailable) optax's own code runs.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from chairgen.models.cpu_kernels import onednn

ENV_SWITCH = "CHAIRGEN_FUSED_ADAM"   # '0': optax's update everywhere


def learning_rate_schedule(opt: ml_collections.ConfigDict) -> optax.Schedule:
  """The paper's schedule: constant, then halved every `decay_every` steps after `decay_start`."""
  boundaries = {}
  if opt.decay_every > 0:
    for boundary in range(opt.decay_start, opt.num_steps, opt.decay_every):
      if boundary > 0:
        boundaries[boundary] = opt.decay_factor
  return optax.piecewise_constant_schedule(opt.learning_rate, boundaries)


class PaperAdam(optax.GradientTransformation):
  """optax.adam as `create_optimizer` makes it: the transformation `apply_gradients` may run
  natively (nadam, adamax and Adam with other options have the same state types)."""


def create_optimizer(opt: ml_collections.ConfigDict) -> PaperAdam:
  """Adam with the paper's β1 = 0.9, β2 = 0.999, ε = 1e-6 (section 4.1)."""
  return PaperAdam(*optax.adam(learning_rate_schedule(opt), b1=opt.b1, b2=opt.b2, eps=opt.eps))


def uses_native_update(state) -> bool:
  """Whether `apply_gradients` runs `adam.cc` for this state: on the CPU backend with one
  device (XLA would not know how to split the call over a mesh), float32 parameters and
  moments, the optimiser of `create_optimizer`, the native library built
  (`onednn.available()`: it comes with the oneDNN kernels, so CHAIRGEN_ONEDNN=0 turns it off
  too), and not turned off with CHAIRGEN_FUSED_ADAM=0 (read when the step is traced)."""
  return (os.environ.get(ENV_SWITCH, "1") != "0"
          and jax.default_backend() == "cpu" and jax.device_count() == 1
          and isinstance(state.tx, PaperAdam)
          and all(x.dtype == jnp.float32
                  for x in jax.tree.leaves((state.params, state.opt_state[0].mu,
                                            state.opt_state[0].nu)))
          and onednn.available())


def _native_adam(param, mu, nu, grad, scalars, opt: ml_collections.ConfigDict):
  """(param, mu, nu) after one Adam step, written in place of the (donated) inputs."""
  like = jax.ShapeDtypeStruct(param.shape, jnp.float32)
  call = jax.ffi.ffi_call(onednn.ADAM_TARGET, (like, like, like),
                          input_output_aliases={0: 0, 1: 1, 2: 2}, vmap_method="sequential")
  # (1 - b) rounded to float32 from the Python float, as optax's `(1 - decay) * g` is.
  return call(param, mu, nu, grad.astype(jnp.float32), scalars,
              b1=np.float32(opt.b1), a1=np.float32(1 - opt.b1), b2=np.float32(opt.b2),
              a2=np.float32(1 - opt.b2), eps=np.float32(opt.eps))


def apply_gradients(state, grads, finite: jax.Array, opt: ml_collections.ConfigDict):
  """state.apply_gradients(grads=grads) where `finite`, else `state` unchanged.

  state: a flax TrainState whose tx is `create_optimizer(opt)` (made from this same `opt`);
  finite: a scalar bool. The native path needs `state` donated to update in place (the train
  step donates it).
  """
  if not uses_native_update(state):
    new_state = state.apply_gradients(grads=grads)
    return jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
  adam, schedule = state.opt_state
  # What optax.adam computes from its counts: the bias corrections of step t = count + 1
  # (scale_by_adam) and the learning rate at the schedule's count (scale_by_learning_rate).
  count = optax.safe_increment(adam.count)
  scalars = jnp.stack([-learning_rate_schedule(opt)(schedule.count),
                       1 - opt.b1 ** count, 1 - opt.b2 ** count,
                       finite]).astype(jnp.float32)
  treedef = jax.tree.structure(state.params)
  leaves = zip(*(treedef.flatten_up_to(tree)
                 for tree in (state.params, adam.mu, adam.nu, grads)))
  params, mu, nu = (treedef.unflatten(x) for x in zip(
      *(_native_adam(p, m, v, g, scalars, opt) for p, m, v, g in leaves)))
  keep = lambda new, old: jnp.where(finite, new, old)
  return state.replace(
      step=keep(state.step + 1, state.step), params=params,
      opt_state=(adam._replace(count=keep(count, adam.count), mu=mu, nu=nu),
                 schedule._replace(count=keep(optax.safe_increment(schedule.count),
                                              schedule.count))))
