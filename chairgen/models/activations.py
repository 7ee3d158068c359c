"""Reading and replacing the generator's named activations (sections 5.5, 5.6, 6).

Every named layer (`style_fc1`, ..., `fc5`, `upconv1`, `conv1`, ...; `rgb_*`/`mask_*` in
2-stream nets; see `layer_names(model)`) is a module whose output is the activation.

Reading uses flax's own `capture_intermediates`; replacing uses `flax.linen.intercept_methods`
to swap a layer's output for

- an array, broadcast to the layer's output shape (e.g. z ~ N(0, I) in place of `style_fc2`,
  a feature-arithmetic result in place of `style_fc1`), or
- a callable applied to the computed output (e.g. keep one unit of `fc4`, mask `fc5`
  spatially, zero some feature maps of the last hidden layer).

Everything happens while tracing, so it works under `jax.jit` (arrays may be traced values;
callables are closed over).  The downstream layers see the replaced value, and so does
capturing.

    outputs, acts = activations.apply(model, variables, style, view, theta,
                                      replace={"fc5": lambda a: a * window_8x8x1})
    acts["fc5"]   # f[B, 8, 8, C], after the replacement
    model.apply(variables, style, view, theta, replace={...})   # same, without capturing
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from chairgen.models import layers

Array = jax.Array
Replacement = Union[Array, Callable[[Array], Array]]


def layer_names(model: nn.Module) -> tuple[str, ...]:
  """The named layers of a generator, from input to output."""
  return model.layer_names()


def _replace(name: str, computed: Array, replacement: Replacement) -> Array:
  if callable(replacement):
    new = jnp.asarray(replacement(computed))
    if new.shape != computed.shape:
      raise ValueError(f"replacement function for layer {name!r} returned shape {new.shape}; "
                       f"the layer's output has shape {computed.shape}")
  else:
    new = jnp.asarray(replacement)
    try:
      new = jnp.broadcast_to(new, computed.shape)
    except ValueError:
      raise ValueError(f"replacement for layer {name!r} has shape {new.shape}, which does "
                       f"not broadcast to the layer's output shape {computed.shape}") from None
  return new.astype(computed.dtype)


@contextlib.contextmanager
def replacing(replacements: Mapping[str, Replacement] | None) -> Iterator[None]:
  """Within the context, named layers' outputs are replaced (see the module docstring).

  Names are matched against named layers only; `Generator.__call__(replace=...)` checks them
  against the model's layers first, so a typo fails loudly.
  """
  if not replacements:
    yield
    return

  def interceptor(next_fun, args, kwargs, context):
    computed = next_fun(*args, **kwargs)
    module = context.module
    if (context.method_name == "__call__" and isinstance(module, layers.Layer)
        and module.name in replacements):
      return _replace(module.name, computed, replacements[module.name])
    return computed

  with nn.intercept_methods(interceptor):
    yield


def check_names(names: Sequence[str], valid: Sequence[str], what: str) -> None:
  unknown = [n for n in names if n not in valid]
  if unknown:
    raise ValueError(f"unknown layer name(s) {unknown} to {what}; this model's layers are "
                     f"{', '.join(valid)}")


def apply(model: nn.Module, variables: Mapping[str, Any], style_BxM: Array, view_Bx4: Array,
          theta_BxT: Array, *, capture: bool | Sequence[str] = True,
          replace: Mapping[str, Replacement] | None = None,
          **apply_kwargs) -> tuple[dict[str, Array], dict[str, Array]]:
  """Runs the generator and returns (outputs, {layer name: activation}).

  capture: True for every named layer, or a sequence of names.  replace: see the module
  docstring.  apply_kwargs go to `model.apply` (rngs, sample_prior, deterministic).
  """
  valid = layer_names(model)
  names = valid if capture is True else tuple(capture or ())
  check_names(names, valid, "capture")
  wanted = frozenset(names)
  outputs, state = model.apply(
      variables, style_BxM, view_Bx4, theta_BxT, replace=replace,
      capture_intermediates=lambda mdl, method: (
          method == "__call__" and isinstance(mdl, layers.Layer) and mdl.name in wanted),
      mutable=["intermediates"], **apply_kwargs)
  captured = state.get("intermediates", {})
  return outputs, {name: captured[name]["__call__"][0] for name in names if name in captured}
