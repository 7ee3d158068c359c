"""The architectures of section 4.2 and the model config.

Channel widths are ours (the paper gives FC5 = 8x8x256 for 1s-S-deep and the expanding part's
parameter counts of Table 1); docs/models.md tabulates them with the resulting counts.  Widths
are given for 128 px (three hidden up-convolutions); 64 px drops the last one, 256 px appends
one of half the last width (section 3.1: one fewer or one more up-convolution).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import ml_collections

FC_STREAM_UNITS = 512   # FC1, FC2 of the style, view and theta streams
FC_JOINT_UNITS = 1024   # FC3, FC4
BASE_SIZE = 8           # FC5 is reshaped to BASE_SIZE x BASE_SIZE x channels
MIN_IMAGE_SIZE = 32
VIEW_DIM = 4            # (sin az, cos az, sin el, cos el)

# The mask head a deterministic net is built with, by the mask loss it is trained with
# (model.mask_loss; the loss itself, including the VAE's, is losses.MASK_LOSSES).
HEAD_FOR_MASK_LOSS = {"nll": "softmax", "euclidean": "linear"}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class StreamWidths:
  """Widths of one expanding stream u: FC5 channels and hidden up-convolutions at 128 px."""
  fc5: int
  upconvs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Variant:
  """One architecture of section 4.2.

  streams: {'': widths} for a 1-stream net (RGB and mask from one last up-convolution), or
    {'rgb': ..., 'mask': ...} for a 2-stream net that splits after FC4.
  deep: a 3x3 convolution after every hidden up-convolution.
  mask_loss: 'nll' (2-channel softmax, λ = 100) or 'euclidean' (1 raw channel, λ = 0.1).
  """
  name: str
  streams: tuple[tuple[str, StreamWidths], ...]
  deep: bool
  mask_loss: str

  @property
  def two_stream(self) -> bool:
    return len(self.streams) == 2


_NARROW = StreamWidths(fc5=256, upconvs=(256, 92, 48))
_WIDE = StreamWidths(fc5=320, upconvs=(320, 120, 62))        # ~1.3x (1.25x at 8 and 16 px)
_MASK = StreamWidths(fc5=128, upconvs=(128, 48, 24))         # the mask stream of 2s nets

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("1s-S-deep", (("", _NARROW),), deep=True, mask_loss="nll"),
    Variant("1s-S", (("", _NARROW),), deep=False, mask_loss="nll"),
    Variant("1s-S-wide", (("", _WIDE),), deep=False, mask_loss="nll"),
    Variant("2s-S", (("rgb", _NARROW), ("mask", _MASK)), deep=False, mask_loss="nll"),
    Variant("2s-E", (("rgb", _NARROW), ("mask", _MASK)), deep=False, mask_loss="euclidean"),
)}


def default_config() -> ml_collections.ConfigDict:
  """The model config; `name` picks a variant of section 4.2."""
  config = ml_collections.ConfigDict()
  config.name = "1s-S-deep"
  # None: the variant's own ('nll' for *-S*, 'euclidean' for 2s-E). Unused by the VAE, whose
  # mask is a Bernoulli likelihood (one sigmoid channel).
  config.mask_loss = ml_collections.FieldReference(None, field_type=str)
  config.vae = False            # Appendix A: q(z|c) replaces the style stream at FC2
  config.latent_dim = 512
  config.dtype = "float32"      # computation dtype; parameters are always float32
  config.kernels = "auto"       # 'auto': the fastest measured path on each backend
                                # (models.cpu_kernels on the CPU); 'xla': XLA's own everywhere;
                                # 'jax': cpu_kernels' pure-JAX forms everywhere (layers.KERNELS).
                                # Not part of a run's identity: the function is the same.
  config.width_multiplier = 1.0  # scales every layer's width (< 1 for tests and tiny runs)
  return config


def get_variant(name: str) -> Variant:
  try:
    return VARIANTS[name]
  except KeyError:
    raise ValueError(
        f"unknown model variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def mask_loss_for(name: str) -> str:
  """The mask loss the paper pairs with variant `name`: 'nll' or 'euclidean'."""
  return get_variant(name).mask_loss


def mask_head(config: ml_collections.ConfigDict) -> str:
  """What the mask output is: 'softmax' (2 logits), 'linear' (1 raw value) or 'sigmoid' (1 logit).

  softmax goes with the NLL loss, linear with the Euclidean loss (as Caffe's 2s-E, which
  regresses the mask directly), sigmoid with the VAE's Bernoulli likelihood.
  """
  variant = get_variant(config.name)
  mask_loss = config.get("mask_loss")
  if config.get("vae", False):
    if mask_loss is not None:
      raise ValueError(
          f"model.mask_loss={mask_loss!r} with model.vae=True: the VAE's mask is a Bernoulli "
          "likelihood (sigmoid); leave model.mask_loss unset (None)")
    return "sigmoid"
  mask_loss = mask_loss or variant.mask_loss
  if mask_loss not in HEAD_FOR_MASK_LOSS:
    raise ValueError(f"unknown model.mask_loss {mask_loss!r}; choose one of "
                     f"{tuple(HEAD_FOR_MASK_LOSS)}")
  return HEAD_FOR_MASK_LOSS[mask_loss]


def mask_channels(head: str) -> int:
  return 2 if head == "softmax" else 1


def num_upconvs(image_size: int) -> int:
  """Up-convolutions from 8x8 to image_size (which must be 8 * 2**n, at least 32)."""
  n = math.log2(image_size / BASE_SIZE) if image_size > 0 else -1
  if image_size < MIN_IMAGE_SIZE or n != int(n):
    raise ValueError(
        f"unsupported image_size {image_size}: it must be 8 * 2**n pixels with n >= 2 "
        f"up-convolutions (32, 64, 128, 256, ...)")
  return int(n)


def scale_width(width: int, multiplier: float) -> int:
  if multiplier <= 0:
    raise ValueError(f"width_multiplier must be > 0, got {multiplier}")
  return max(1, int(round(width * multiplier)))


def hidden_upconv_widths(widths: StreamWidths, image_size: int, multiplier: float = 1.0
                         ) -> tuple[int, ...]:
  """Widths of the hidden up-convolutions (all but the output one) at image_size."""
  count = num_upconvs(image_size) - 1
  base = list(widths.upconvs)
  while len(base) < count:
    base.append(max(8, base[-1] // 2))
  return tuple(scale_width(w, multiplier) for w in base[:count])


def compute_dtype(name: str):
  try:
    return DTYPES[name]
  except KeyError:
    raise ValueError(f"unknown model.dtype {name!r}; choose one of {sorted(DTYPES)}") from None
