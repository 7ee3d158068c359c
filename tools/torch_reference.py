"""PyTorch reference of the 1s-S-deep generator, the loss of eq. (1) and Adam, for benchmarks.

The same network as `chairgen.models.create_model(config)` with `config.name = '1s-S-deep'`
(section 3.1, Figure 1): widths come from `chairgen.models.variants`, so the two cannot drift
apart, and `load_jax_params` copies a JAX parameter tree into it (the test suite checks that
both then compute the same outputs).  Only `tools/benchmark.py` and tests use it; torch is an
optional extra (`pip install torch==2.13.0`, the CPU build).

Layouts: activations are NCHW tensors in `channels_last` memory (NHWC in memory, like JAX).
The JAX up-convolution kernel K[4, 4, Cin, Cout] correlates the bed-of-nails input padded by 2;
`ConvTranspose2d(k=4, s=2, p=1)` computes the same map with weight K flipped in both spatial
axes, laid out [Cin, Cout, 4, 4].
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from chairgen.models import variants

MASK_WEIGHT = 100.0   # λ of the NLL mask loss (section 3.2)


@dataclasses.dataclass(frozen=True)
class Spec:
  """What fixes the network: sizes of the inputs and the output image."""
  num_styles: int
  theta_dim: int
  image_size: int
  variant: str = "1s-S-deep"


def _linear(d_in: int, d_out: int) -> nn.Linear:
  layer = nn.Linear(d_in, d_out)
  nn.init.normal_(layer.weight, 0.0, (2.0 / d_in) ** 0.5)   # He et al., as the JAX model
  nn.init.zeros_(layer.bias)
  return layer


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
  layer = nn.Conv2d(c_in, c_out, 3, padding=1)
  nn.init.normal_(layer.weight, 0.0, (2.0 / (9 * c_in)) ** 0.5)
  nn.init.zeros_(layer.bias)
  return layer


def _upconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
  layer = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
  nn.init.normal_(layer.weight, 0.0, (2.0 / (4 * c_in)) ** 0.5)  # fan-in of a stride-2 upconv
  nn.init.zeros_(layer.bias)
  return layer


class Generator(nn.Module):
  """g(c, v, θ) -> (rgb f[B, 3, S, S], mask logits f[B, 2, S, S]), NCHW (channels_last)."""

  def __init__(self, spec: Spec):
    super().__init__()
    variant = variants.get_variant(spec.variant)
    if variant.two_stream or variant.mask_loss != "nll":
      raise ValueError(f"the torch reference implements 1-stream NLL variants, not "
                       f"{spec.variant!r}")
    (_, widths), = variant.streams
    stream, joint = variants.FC_STREAM_UNITS, variants.FC_JOINT_UNITS
    self.spec = spec
    self.fc = nn.ModuleDict({
        "style_fc1": _linear(spec.num_styles, stream), "style_fc2": _linear(stream, stream),
        "view_fc1": _linear(variants.VIEW_DIM, stream), "view_fc2": _linear(stream, stream),
        "theta_fc1": _linear(spec.theta_dim, stream), "theta_fc2": _linear(stream, stream),
        "fc3": _linear(3 * stream, joint), "fc4": _linear(joint, joint),
        "fc5": _linear(joint, variants.BASE_SIZE ** 2 * widths.fc5),
    })
    self.base_channels = widths.fc5
    expanding = {}
    c_in = widths.fc5
    hidden = variants.hidden_upconv_widths(widths, spec.image_size)
    for i, width in enumerate(hidden, start=1):
      expanding[f"upconv{i}"] = _upconv(c_in, width)
      if variant.deep:
        expanding[f"conv{i}"] = _conv(width, width)
      c_in = width
    expanding[f"upconv{len(hidden) + 1}"] = _upconv(c_in, 3 + 2)
    self.expanding = nn.ModuleDict(expanding)

  def forward(self, style: torch.Tensor, view: torch.Tensor, theta: torch.Tensor):
    fc = self.fc
    streams = [fc[f"{name}_fc2"](F.relu(fc[f"{name}_fc1"](x))).relu()
               for name, x in (("style", style), ("view", view), ("theta", theta))]
    h = fc["fc4"](fc["fc3"](torch.cat(streams, dim=1)).relu()).relu()
    size = variants.BASE_SIZE
    x = fc["fc5"](h).relu().view(-1, size, size, self.base_channels).permute(0, 3, 1, 2)
    layers = list(self.expanding.values())
    for layer in layers[:-1]:
      x = layer(x).relu()
    out = layers[-1](x)
    return out[:, :3], out[:, 3:]


def loss_fn(rgb: torch.Tensor, mask_logits: torch.Tensor, image_u8: torch.Tensor,
            mask_u8: torch.Tensor) -> torch.Tensor:
  """Eq. (1) with the NLL mask loss, as `chairgen.losses` ('nll', Caffe conventions).

  image_u8 uint8[B, S, S, 3], mask_u8 uint8[B, S, S, 1] in {0, 1} (the pipeline's batch);
  rgb [B, 3, S, S], mask_logits [B, 2, S, S].
  """
  mask = mask_u8.permute(0, 3, 1, 2).float()
  target = image_u8.permute(0, 3, 1, 2).float() / 255.0 * mask
  batch = rgb.shape[0]
  rgb_loss = 0.5 * torch.sum(torch.square(rgb - target)) / batch
  logp = F.log_softmax(mask_logits, dim=1)
  s = mask[:, 0]
  nll = -torch.mean(s * logp[:, 1] + (1.0 - s) * logp[:, 0])
  return rgb_loss + MASK_WEIGHT * nll


def create(spec: Spec, channels_last: bool = True, seed: int = 0):
  """(model, Adam optimizer) with the paper's settings (section 4.1)."""
  torch.manual_seed(seed)
  model = Generator(spec)
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
  optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-6)
  return model, optimizer


def make_train_step(model: Generator, optimizer: torch.optim.Optimizer, num_styles: int,
                    compile_model: bool = False):
  """step(batch of torch tensors) -> loss; forward, loss, backward and Adam on the model.

  compile_model: wrap forward + loss in `torch.compile` (AOTAutograd compiles the backward);
  the optimizer runs eagerly (its foreach implementation).
  """

  def forward_loss(style, view, theta, image, mask):
    style_onehot = F.one_hot(style.long(), num_styles).float()
    rgb, logits = model(style_onehot, view, theta)
    return loss_fn(rgb, logits, image, mask)

  fn = torch.compile(forward_loss) if compile_model else forward_loss

  def step(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = fn(batch["style"], batch["view"], batch["theta"], batch["image"], batch["mask"])
    loss.backward()
    optimizer.step()
    return loss.detach()

  return step


def num_parameters(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())


def load_jax_params(model: Generator, params: Mapping[str, Any]) -> None:
  """Copies a JAX 1s-S-deep parameter tree (params['fc3']['kernel'], ...) into the model."""
  with torch.no_grad():
    for name, layer in list(model.fc.items()) + list(model.expanding.items()):
      kernel = np.asarray(params[name]["kernel"], np.float32)
      bias = np.asarray(params[name]["bias"], np.float32)
      if isinstance(layer, nn.Linear):
        weight = kernel.T                                     # [in, out] -> [out, in]
      elif isinstance(layer, nn.ConvTranspose2d):
        weight = kernel[::-1, ::-1].transpose(2, 3, 0, 1)     # flipped, [Cin, Cout, 4, 4]
      else:
        weight = kernel.transpose(3, 2, 0, 1)                 # HWIO -> [Cout, Cin, 3, 3]
      if tuple(weight.shape) != tuple(layer.weight.shape):
        raise ValueError(f"{name}: JAX kernel gives {weight.shape}, torch expects "
                         f"{tuple(layer.weight.shape)}; were both built for the same spec?")
      layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
      layer.bias.copy_(torch.from_numpy(np.array(bias)))


def to_torch_batch(batch: Mapping[str, np.ndarray], theta: np.ndarray) -> dict[str, torch.Tensor]:
  """The pipeline's numpy batch (+ θ f32[B, T]) as torch tensors (shared memory, no copy)."""
  return {"image": torch.from_numpy(np.asarray(batch["image"])),
          "mask": torch.from_numpy(np.asarray(batch["mask"])),
          "style": torch.from_numpy(np.asarray(batch["style"])),
          "view": torch.from_numpy(np.asarray(batch["view"], np.float32)),
          "theta": torch.from_numpy(np.asarray(theta, np.float32))}
