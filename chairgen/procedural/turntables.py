"""Turntable writers in the upstream layouts, plus a keypoints file per model.

Aubry et al. (chairs):
    rendered_chairs/all_chair_names.mat            folder_names, instance_names (cell arrays)
    rendered_chairs/<name>/renders/image_KKK_pPPP_tTTT_r096.png   RGB on white, 62 views
    rendered_chairs/<name>/keypoints.json
  KKK is i for elevation 20 and 32 + i for elevation 30 (i = azimuth index 0..30), as inferred
  in NOTES.md; tTTT is int(i * 360 / 31); r096 is Aubry's distance tag, kept verbatim.

3D-R2N2 ShapeNetRendering (tables, cars, optionally chairs):
    <synset>/<name>/rendering/NN.png               RGBA, alpha 255 on the mask, 0 elsewhere
    <synset>/<name>/rendering/renderings.txt       the file names, one per line, view order
    <synset>/<name>/rendering/rendering_metadata.txt  "az el in_plane_rot distance fov" per view
    <synset>/<name>/keypoints.json
  Views run elevation-major: NN = e * 36 + a over azimuths 0..350 step 10 and elevations
  0..40 step 10 (180 views), then 50..90 when extra elevations are requested (+180 views).
  NN is written with "%02d" as in R2N2 (00..99, then 100..359).

A model folder only ever appears complete: it is written under `<out_dir>/.partial/` and
renamed into place (atomic on one file system), so an interrupted run leaves no model that
looks finished and a rerun skips exactly the finished ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from chairgen.procedural import camera
from chairgen.procedural.objects import ProceduralObject
from chairgen.procedural.renderer import KEYPOINT_DEPTH_TOLERANCE, Renderer, View

AUBRY_AZIMUTHS = tuple(int(i * 360 / 31) for i in range(31))
AUBRY_ELEVATIONS = (20, 30)
AUBRY_DISTANCE_TAG = 96
AUBRY_ROOT = "rendered_chairs"
AUBRY_NAMES_MAT = "all_chair_names.mat"
R2N2_AZIMUTHS = tuple(range(0, 360, 10))
R2N2_ELEVATIONS = tuple(range(0, 50, 10))
R2N2_EXTRA_ELEVATIONS = tuple(range(50, 100, 10))
SYNSETS = {"chairs": "03001627", "tables": "04379243", "cars": "02958343"}
LAYOUTS = ("aubry", "r2n2")
KEYPOINTS_FILE = "keypoints.json"
PARTIAL_DIR = ".partial"
_CHUNK = 64  # Views rendered and held at a time while writing a model.
PNG_COMPRESS_LEVEL = 1  # zlib level 1: much faster than PIL's default, still lossless.


@dataclasses.dataclass(frozen=True)
class ViewSpec:
  """One turntable view: its file path relative to the model folder and its angles."""

  file: str
  azimuth: int
  elevation: int


def aubry_views() -> list[ViewSpec]:
  """The 62 Aubry views, in file-index order."""
  views = []
  for e, elevation in enumerate(AUBRY_ELEVATIONS):
    for i, azimuth in enumerate(AUBRY_AZIMUTHS):
      k = i + 32 * e
      name = f"image_{k:03d}_p{elevation:03d}_t{azimuth:03d}_r{AUBRY_DISTANCE_TAG:03d}.png"
      views.append(ViewSpec(f"renders/{name}", azimuth, elevation))
  return views


def r2n2_views(extra_elevations: bool = False) -> list[ViewSpec]:
  """180 views (360 with extra elevations), elevation-major, in file-index order."""
  elevations = R2N2_ELEVATIONS + (R2N2_EXTRA_ELEVATIONS if extra_elevations else ())
  grid = [(el, az) for el in elevations for az in R2N2_AZIMUTHS]
  return [ViewSpec(f"rendering/{n:02d}.png", az, el) for n, (el, az) in enumerate(grid)]


def views_for(layout: str, extra_elevations: bool = False) -> list[ViewSpec]:
  _check_layout(layout)
  if layout == "aubry":
    if extra_elevations:
      raise ValueError("The Aubry layout has exactly 62 views; extra elevations need layout "
                       "'r2n2'.")
    return aubry_views()
  return r2n2_views(extra_elevations)


def _check_layout(layout: str) -> None:
  if layout not in LAYOUTS:
    raise ValueError(f"Unknown layout {layout!r}; expected one of {LAYOUTS}.")


def model_dir(out_dir: str | os.PathLike, layout: str, family: str, name: str) -> str:
  """Final folder of one model (its existence means the model is complete)."""
  _check_layout(layout)
  if layout == "aubry":
    if family != "chairs":
      raise ValueError(f"The Aubry layout holds chairs only, not {family}; use layout 'r2n2'.")
    return os.path.join(out_dir, AUBRY_ROOT, name)
  return os.path.join(out_dir, SYNSETS[family], name)


def render_turntable(renderer: Renderer, obj: ProceduralObject, layout: str = "r2n2",
                     extra_elevations: bool = False) -> Iterator[tuple[ViewSpec, View]]:
  """Yields (view spec, rendered view) for every view of the layout, in file-index order.

  Views are rendered in batches (`Renderer.render_views`), exactly as the writers do.
  """
  specs = views_for(layout, extra_elevations)
  yield from zip(specs, renderer.render_views(obj, [(s.azimuth, s.elevation) for s in specs]))


def save_png(path: str, image: np.ndarray) -> None:
  """Writes uint8 [S, S, 3|4] as PNG, fast and deterministic (no timestamps or metadata)."""
  Image.fromarray(image).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def keypoints_record(obj: ProceduralObject, image_size: int,
                     views: Sequence[tuple[ViewSpec, np.ndarray, np.ndarray]]) -> dict:
  """The content of keypoints.json (format in docs/data.md).

  `views`: (spec, keypoints_px float32[K, 2], keypoints_visible bool[K]) in file order.
  """
  return {
      "format": "chairgen-keypoints-1",
      "family": obj.family, "name": obj.name, "index": obj.index, "seed": obj.seed,
      "image_size": image_size,
      "camera": {"distance": camera.CAMERA_DISTANCE, "fov_deg": camera.FIELD_OF_VIEW_DEG,
                 "pixel_convention": "x right, y down, top-left pixel covers [0,1)x[0,1)"},
      "depth_tolerance": KEYPOINT_DEPTH_TOLERANCE,
      "names": obj.keypoint_names,
      "points_3d": [[round(float(c), 6) for c in p] for p in obj.keypoint_array()],
      "factors": obj.factors,
      "views": [{
          "file": spec.file, "azimuth": spec.azimuth, "elevation": spec.elevation,
          "xy": np.round(xy.astype(np.float64), 4).tolist(),
          "visible": visible.tolist(),
      } for spec, xy, visible in views],
  }


def _write_files(folder: str, obj: ProceduralObject, renderer: Renderer, layout: str,
                 extra_elevations: bool) -> None:
  views = list(views_for(layout, extra_elevations))
  os.makedirs(os.path.join(folder, os.path.dirname(views[0].file)))
  keypoints = []
  for start in range(0, len(views), _CHUNK):  # Chunks bound the memory held at large sizes.
    chunk = views[start:start + _CHUNK]
    for spec, view in zip(chunk, renderer.render_views(obj, [(s.azimuth, s.elevation)
                                                             for s in chunk])):
      save_png(os.path.join(folder, spec.file), view.rgb if layout == "aubry" else view.rgba)
      keypoints.append((spec, view.keypoints_px, view.keypoints_visible))
  if layout == "r2n2":
    rendering = os.path.join(folder, "rendering")
    with open(os.path.join(rendering, "renderings.txt"), "w") as f:
      f.writelines(os.path.basename(spec.file) + "\n" for spec in views)
    with open(os.path.join(rendering, "rendering_metadata.txt"), "w") as f:
      f.writelines(f"{spec.azimuth:g} {spec.elevation:g} 0 {camera.CAMERA_DISTANCE:g} "
                   f"{camera.FIELD_OF_VIEW_DEG:g}\n" for spec in views)
  with open(os.path.join(folder, KEYPOINTS_FILE), "w") as f:
    json.dump(keypoints_record(obj, renderer.image_size, keypoints), f)


def write_model(renderer: Renderer, obj: ProceduralObject, out_dir: str | os.PathLike,
                layout: str, extra_elevations: bool = False) -> bool:
  """Writes one model's turntable atomically; returns False if it was already complete."""
  final = model_dir(out_dir, layout, obj.family, obj.name)
  if os.path.isdir(final):
    return False
  partial_root = os.path.join(out_dir, PARTIAL_DIR)
  os.makedirs(partial_root, exist_ok=True)
  os.makedirs(os.path.dirname(final), exist_ok=True)
  tmp = os.path.join(partial_root, f"{obj.name}.{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    _write_files(tmp, obj, renderer, layout, extra_elevations)
    os.rename(tmp, final)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return True


_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by chairgen".ljust(116)


def write_aubry_names(out_dir: str | os.PathLike, names: Sequence[str]) -> str:
  """Writes rendered_chairs/all_chair_names.mat atomically and returns its path.

  `folder_names` (1 x N cell, model order) and `instance_names` (1 x 62 cell, file names of
  one model's renders in file-index order), as MATLAB cell arrays of strings.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top

  root = os.path.join(out_dir, AUBRY_ROOT)
  os.makedirs(root, exist_ok=True)
  def cell(strings):
    out = np.empty((1, len(strings)), dtype=object)
    out[0, :] = list(strings)
    return out
  instances = [os.path.basename(v.file) for v in aubry_views()]
  path = os.path.join(root, AUBRY_NAMES_MAT)
  tmp = os.path.join(out_dir, PARTIAL_DIR, f"{AUBRY_NAMES_MAT}.{os.getpid()}")
  os.makedirs(os.path.dirname(tmp), exist_ok=True)
  with open(tmp, "wb") as f:
    scipy.io.savemat(f, {"folder_names": cell(names), "instance_names": cell(instances)})
    # The 116-byte text header carries the time of writing; a fixed one keeps the file a
    # function of its content (committed test trees do not change when rewritten).
    f.seek(0)
    f.write(_MAT_HEADER)
  os.replace(tmp, path)
  return path
