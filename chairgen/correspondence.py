"""Dense correspondences through a generated morph (section 5.7): optical flow between
consecutive frames, the paper's drift compensation, chaining, and keypoint transfer.

Optical flow comes from OpenCV, nothing hand-written that it does:

  dis          `cv2.DISOpticalFlow` (Kroeger et al. 2016; its own variational refinement on)
  variational  `cv2.VariationalRefinement` run coarse to fine over an image pyramid: the
               energy of Brox et al. 2004 (brightness and gradient constancy, TV smoothness)
               that the paper's flow minimised, with the warping scheme of that paper

A flow field F of images a -> b is f32[H, W, 2] in pixels (x right, y down): the pixel centred
at p in a is seen at p + F(p) in b. Pixel centres sit at (j + 0.5, i + 0.5), the keypoints'
convention (docs/data.md), and flows are looked up bilinearly between centres.

    flow = correspondence.morph_flow(frames, method="dis")          # first frame -> last
    moved = correspondence.transfer_keypoints(points_Kx2, flow, mask_of_last)
    moved.points, moved.status    # status: 'ok', 'outside' (left the image) or 'off_mask'
    correspondence.displacements(moved.points, truth_Kx2)            # Table 3's measure

Baselines on the same keypoints: `optical_flow(a, b)` directly (no morph), `sift_match` (SIFT
descriptors, best match: SIFT flow's data term without its smoothness; SIFT flow and DSP
themselves exist only as MATLAB/C code), and `nearest_point_field` (the oracle). `draw_points`
and `draw_flow` make the figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chairgen import imaging

METHODS = ("dis", "variational")
DRIFT_STEP = 9   # the paper recomputes the flow over steps of 9 frames (section 5.7)
OK, OUTSIDE, OFF_MASK = "ok", "outside", "off_mask"


def _cv2():
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("optical flow needs OpenCV: pip install opencv-python-headless") from e
  return cv2


def _grey_uint8(image) -> np.ndarray:
  image = imaging.to_uint8(image)
  if image.ndim == 3:
    cv2 = _cv2()
    image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
  return np.ascontiguousarray(image)


def optical_flow(a, b, method: str = "dis", init: np.ndarray | None = None,
                 params: Mapping[str, Any] | None = None) -> np.ndarray:
  """The flow a -> b (f32[H, W, 2]) of images [H, W, 3] or [H, W] (uint8 or float in [0, 1]).

  init: a flow to start from (DIS finds the residual flow to b warped back along it; the
  variational method refines it at full resolution). params: the method's settings, e.g.
  {'preset': 'medium', 'patch_size': 8, 'patch_stride': 3, 'finest_scale': 1} for DIS or
  {'alpha': 5.0, 'gamma': 10.0, 'delta': 5.0, 'levels': 5, 'iterations': 10} for the
  variational method (its defaults: alpha 5, OpenCV's gamma 10 and delta 5).
  """
  cv2, params = _cv2(), dict(params or {})
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
  if np.shape(a)[:2] != np.shape(b)[:2]:
    raise ValueError(f"images differ in size: {np.shape(a)} vs {np.shape(b)}")
  h, w = np.shape(a)[:2]
  flow = (np.zeros((h, w, 2), np.float32) if init is None
          else np.ascontiguousarray(np.asarray(init, np.float32)))
  if flow.shape != (h, w, 2):
    raise ValueError(f"init must have shape {(h, w, 2)}, got {flow.shape}")
  if method == "dis":
    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    dis = cv2.DISOpticalFlow_create(presets[params.pop("preset", "medium")])
    dis.setUseSpatialPropagation(True)
    if "patch_size" in params:
      dis.setPatchSize(int(params.pop("patch_size")))
    if "patch_stride" in params:
      dis.setPatchStride(int(params.pop("patch_stride")))
    if "finest_scale" in params:   # 0: flow at full resolution (small images need it)
      dis.setFinestScale(int(params.pop("finest_scale")))
    _check_empty(params, method)
    grey_a, grey_b = _grey_uint8(a), _grey_uint8(b)
    if init is None:
      return dis.calc(grey_a, grey_b, None)
    # OpenCV's DIS takes no initial flow: warp b back along it, find the residual a -> warped
    # b, and compose (a(p) ≈ b(p + R(p) + G(p + R(p))).
    warped = warp_back(grey_b, flow)
    return compose(dis.calc(grey_a, warped, None), flow)
  return _variational(_grey_uint8(a), _grey_uint8(b), flow, params)


def _check_empty(params: dict, method: str) -> None:
  if params:
    raise ValueError(f"unknown {method} flow parameter(s) {sorted(params)}")


def _variational(a: np.ndarray, b: np.ndarray, init: np.ndarray, params: dict) -> np.ndarray:
  """Coarse to fine: VariationalRefinement at each level of a 2x pyramid, the flow carried
  up by doubling; a given non-zero `init` is refined at full resolution only."""
  cv2 = _cv2()
  levels = int(params.pop("levels", 5))
  # alpha (smoothness) 5 instead of OpenCV's 20: at 20 the flow of a 64 px image hardly
  # moves; the section's validation pairs are where to tune it.
  settings = {"alpha": float(params.pop("alpha", 5.0))}
  settings.update({k: float(params.pop(k)) for k in ("gamma", "delta") if k in params})
  iterations = int(params.pop("iterations", 10))
  _check_empty(params, "variational")
  pyramid = [(a, b)]
  start = np.any(init)   # an initial flow is refined at full resolution only
  while not start and len(pyramid) < levels and min(pyramid[-1][0].shape) >= 16:
    pyramid.append(tuple(cv2.pyrDown(x) for x in pyramid[-1]))
  flow = init.copy() if start else None
  for x, y in reversed(pyramid):
    h, w = x.shape
    if flow is None:
      flow = np.zeros((h, w, 2), np.float32)
    elif flow.shape[:2] != (h, w):
      flow = 2.0 * cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    refine = cv2.VariationalRefinement_create()
    refine.setFixedPointIterations(iterations)
    for name, value in settings.items():
      getattr(refine, f"set{name.capitalize()}")(value)
    flow = refine.calc(x, y, np.ascontiguousarray(flow, np.float32))
  return flow


# ----------------------------------------------------------------------------- chaining

def sample(field: np.ndarray, points_Kx2: np.ndarray) -> np.ndarray:
  """Bilinear lookup of a field f[H, W, C] at continuous points (x, y), centres at +0.5;
  points outside are clamped to the border (callers flag them), f32[K, C]."""
  h, w = field.shape[:2]
  x = np.clip(np.asarray(points_Kx2[:, 0], np.float64) - 0.5, 0.0, w - 1.0)
  y = np.clip(np.asarray(points_Kx2[:, 1], np.float64) - 0.5, 0.0, h - 1.0)
  x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
  x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
  fx, fy = (x - x0)[:, None], (y - y0)[:, None]
  top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
  bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
  return (top * (1 - fy) + bottom * fy).astype(np.float32)


def warp_back(image_b: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
  """b seen from a: b(p + F(p)) at every pixel p of a (bilinear, edges replicated)."""
  cv2 = _cv2()
  h, w = flow_ab.shape[:2]
  grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
  return cv2.remap(np.ascontiguousarray(image_b), grid_x + flow_ab[..., 0],
                   grid_y + flow_ab[..., 1], interpolation=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)


def compose(flow_ab: np.ndarray, flow_bc: np.ndarray) -> np.ndarray:
  """The flow a -> c of flows a -> b and b -> c: F(p) = F_ab(p) + F_bc(p + F_ab(p))."""
  return (flow_ab + warp_back(np.asarray(flow_bc, np.float32), flow_ab)).astype(np.float32)


def chain(flows: Sequence[np.ndarray]) -> np.ndarray:
  """The composition of consecutive flows f_0 (0 -> 1), f_1 (1 -> 2), ...: 0 -> last."""
  if not flows:
    raise ValueError("chain needs at least one flow")
  out = flows[0]
  for f in flows[1:]:
    out = compose(out, f)
  return out


def span_flows(frames, method: str = "dis", *, drift_step: int | None = DRIFT_STEP,
               params: Mapping[str, Any] | None = None) -> tuple[list[int], list[np.ndarray]]:
  """The morph's flows span by span: (end frame of each span, flow from its start to its end).

  Flow between consecutive frames; with drift_step k, the flow over each span of k frames is
  then recomputed directly between its end frames, initialised by the concatenation of the
  per-frame flows inside it (the paper's drift compensation). None (or < 2): spans of one
  frame, the per-frame flows only.
  """
  frames = [_grey_uint8(f) for f in frames]   # once, not once per flow
  if len(frames) < 2:
    raise ValueError(f"a morph needs at least 2 frames, got {len(frames)}")
  steps = [optical_flow(frames[i], frames[i + 1], method, params=params)
           for i in range(len(frames) - 1)]
  if not drift_step or drift_step < 2:
    return list(range(1, len(frames))), steps
  ends, spans, start = [], [], 0
  while start < len(steps):
    end = min(start + drift_step, len(steps))
    guess = chain(steps[start:end])
    spans.append(guess if end - start == 1 else
                 optical_flow(frames[start], frames[end], method, init=guess, params=params))
    ends.append(end)
    start = end
  return ends, spans


def morph_flow(frames, method: str = "dis", *, drift_step: int | None = DRIFT_STEP,
               params: Mapping[str, Any] | None = None) -> np.ndarray:
  """The flow from a morph's first frame to its last (section 5.7): the concatenation of its
  `span_flows` (per-frame flows, drift-compensated over spans of `drift_step` frames)."""
  return chain(span_flows(frames, method, drift_step=drift_step, params=params)[1])


def cumulative(flows: Sequence[np.ndarray]) -> list[np.ndarray]:
  """[f_0, f_0∘f_1, ...]: the flow from the first frame to the end of each flow."""
  out = [flows[0]]
  for f in flows[1:]:
    out.append(compose(out[-1], f))
  return out


# ----------------------------------------------------------------------------- keypoints

@dataclasses.dataclass(frozen=True)
class Transferred:
  points: np.ndarray   # f32[K, 2] where each keypoint lands in the second image
  status: np.ndarray   # object[K]: OK, OUTSIDE (left the image) or OFF_MASK


def locate(points_Kx2, shape: tuple[int, int], mask_of_target: np.ndarray | None = None,
           threshold: float = 0.5) -> np.ndarray:
  """The status of predicted points in the second image, object[K]: OK, OUTSIDE (not inside
  the image) or OFF_MASK (mask probability < threshold there, bilinear)."""
  points = np.asarray(points_Kx2, np.float32).reshape(-1, 2)
  h, w = shape
  status = np.full(len(points), OK, dtype=object)
  outside = ((points[:, 0] < 0) | (points[:, 0] >= w) | (points[:, 1] < 0) | (points[:, 1] >= h))
  status[outside] = OUTSIDE
  if mask_of_target is not None:
    mask = np.asarray(mask_of_target, np.float32).reshape(h, w, 1)
    off = (sample(mask, points)[:, 0] < threshold) & ~outside
    status[off] = OFF_MASK
  return status


def transfer_keypoints(points_Kx2, flow: np.ndarray, mask_of_target: np.ndarray | None = None,
                       threshold: float = 0.5) -> Transferred:
  """Moves keypoints of the first image along a flow into the second; reports (never drops)
  those that leave the image or land off the second image's mask (probability < threshold)."""
  points = np.asarray(points_Kx2, np.float32).reshape(-1, 2)
  moved = points + sample(flow, points)
  return Transferred(points=moved, status=locate(moved, flow.shape[:2], mask_of_target,
                                                 threshold))


def displacements(predicted_Kx2, truth_Kx2) -> np.ndarray:
  """Section 5.7's measure per keypoint: the Euclidean distance in pixels, f64[K]."""
  return np.linalg.norm(np.asarray(predicted_Kx2, np.float64)
                        - np.asarray(truth_Kx2, np.float64), axis=1)


# ----------------------------------------------------------------------------- baselines

def sift_match(image_a, image_b, points_Kx2, *, size: float = 8.0, mask_of_b=None,
               threshold: float = 0.5) -> np.ndarray:
  """Descriptor matching in the spirit of SIFT flow, without its smoothness term: OpenCV's
  SIFT descriptor (upright, diameter `size` px) at each point of a, compared (L2) with the
  descriptor at every pixel centre of b (inside b's mask where given); the best match is the
  prediction, f32[K, 2]."""
  cv2 = _cv2()
  grey_a, grey_b = _grey_uint8(image_a), _grey_uint8(image_b)
  points = np.asarray(points_Kx2, np.float32).reshape(-1, 2)
  h, w = grey_b.shape
  ys, xs = np.mgrid[0:h, 0:w]
  candidates = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1).astype(np.float32)
  if mask_of_b is not None:
    inside = np.asarray(mask_of_b, np.float32).reshape(h, w).ravel() >= threshold
    if inside.any():
      candidates = candidates[inside]
  sift = cv2.SIFT_create()

  def describe(grey, xy):
    # OpenCV puts pixel centres at integers; angle 0 = upright (SIFT flow's dense SIFT).
    kps = [cv2.KeyPoint(float(x) - 0.5, float(y) - 0.5, float(size), 0.0) for x, y in xy]
    kept, desc = sift.compute(grey, kps)
    if desc is None or len(kept) != len(kps):
      raise RuntimeError(f"SIFT kept {0 if desc is None else len(kept)} of {len(kps)} points")
    return desc.astype(np.float32)

  da, db = describe(grey_a, points), describe(grey_b, candidates)
  d2 = np.square(da).sum(1)[:, None] + np.square(db).sum(1)[None, :] - 2.0 * da @ db.T
  return candidates[np.argmin(d2, axis=1)]


def nearest_point_field(points_a_Kx2, points_b_Kx2, shape: tuple[int, int]) -> np.ndarray:
  """The 'oracle' flow: at each pixel centre, the true displacement of the nearest keypoint of
  a, f32[H, W, 2]. Through `transfer_keypoints` it gives the pipeline's floor: what the
  bilinear lookup alone costs when neighbouring keypoints move differently."""
  a = np.asarray(points_a_Kx2, np.float32).reshape(-1, 2)
  moves = np.asarray(points_b_Kx2, np.float32).reshape(-1, 2) - a
  h, w = shape
  ys, xs = np.mgrid[0:h, 0:w]
  centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
  nearest = np.argmin(np.square(centres[:, None, :] - a[None]).sum(-1), axis=1)
  return moves[nearest].reshape(h, w, 2).astype(np.float32)


def resize(image, size: int, *, interpolation: str = "cubic") -> np.ndarray:
  """An image [H, W(, C)] (uint8 or float in [0, 1]) resized to size x size: float32 in [0, 1]
  (bicubic, clipped) or, with interpolation 'linear', for masks."""
  cv2 = _cv2()
  image = imaging.to_float(image)
  if image.shape[0] == size and image.shape[1] == size:
    return image.astype(np.float32)
  flag = cv2.INTER_CUBIC if interpolation == "cubic" else cv2.INTER_LINEAR
  out = cv2.resize(np.ascontiguousarray(image, np.float32), (size, size), interpolation=flag)
  return np.clip(out.reshape((size, size) + image.shape[2:]), 0.0, 1.0)


# ----------------------------------------------------------------------------- drawing

def palette(n: int) -> np.ndarray:
  """n distinct saturated colours, uint8[n, 3] (keypoint i keeps colour i in every cell)."""
  cv2 = _cv2()
  hsv = np.stack([(np.arange(n) * 180 // max(n, 1)) % 180, np.full(n, 230), np.full(n, 200)],
                 1).astype(np.uint8)
  return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def draw_points(image, points_Kx2, colors_Kx3, *, scale: int = 1, marker: str = "dot",
                lines_to=None) -> np.ndarray:
  """uint8 image (upscaled `scale`×) with points drawn: 'dot' (filled) or 'ring' (a circle:
  ground truth); lines_to draws a line from each point to the one given (the error)."""
  cv2 = _cv2()
  image = imaging.to_uint8(image)
  if scale != 1:
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
  image = np.ascontiguousarray(image)
  shift = 4   # subpixel positions: OpenCV draws at coordinates / 2**shift

  def at(p):   # continuous pixel coordinates (centres at +0.5) -> OpenCV's (centres at 0)
    return tuple(int(round((v * scale - 0.5) * (1 << shift))) for v in p)
  radius = max(2, scale + 1)
  points = np.asarray(points_Kx2, np.float64).reshape(-1, 2)
  for i, p in enumerate(points):
    color = tuple(int(c) for c in colors_Kx3[i])
    if lines_to is not None:
      cv2.line(image, at(p), at(lines_to[i]), color, 1, cv2.LINE_AA, shift)
    if marker == "ring":
      cv2.circle(image, at(p), (radius + 1) << shift, color, 1, cv2.LINE_AA, shift)
    else:
      cv2.circle(image, at(p), radius << shift, color, -1, cv2.LINE_AA, shift)
  return image


def draw_flow(image, flow: np.ndarray, *, scale: int = 2, step: int = 6, mask=None,
              color=(20, 60, 200)) -> np.ndarray:
  """uint8 image (upscaled) with the flow drawn as arrows from a grid of pixel centres
  (every `step` px, inside `mask` where given) to where the flow takes them."""
  cv2 = _cv2()
  h, w = flow.shape[:2]
  ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
  starts = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
  if mask is not None:
    keep = np.asarray(mask, np.float32).reshape(h, w)[ys.ravel(), xs.ravel()] >= 0.5
    starts = starts[keep]
  ends = starts + sample(flow, starts)
  image = imaging.to_uint8(image)
  image = np.ascontiguousarray(cv2.resize(image, None, fx=scale, fy=scale,
                                          interpolation=cv2.INTER_CUBIC))
  for p, q in zip(starts * scale - 0.5, ends * scale - 0.5):
    cv2.arrowedLine(image, tuple(int(round(v)) for v in p), tuple(int(round(v)) for v in q),
                    color, 1, cv2.LINE_AA, 0, 0.3)
  return image
