"""Shared pieces of the chairgen TFDS builders.

Everything here is TensorFlow-free: images are decoded and encoded with Pillow and handed to
TFDS as PNG bytes, which TFDS stores unchanged in `array_record` files.

Contents:
- `features(S)`: the feature dictionary of docs/design.md, shared by all three builders.
- `TurntableBuilder`: base builder (array_record by default, one `train` split in generation
  order, a clear error instead of an empty data source when the build never finished,
  `tfds.load` / `as_dataset` through tf.data in either file format).
- PNG reading with validation (`read_png`), compositing on white, the background-subtraction
  mask and the per-model square crop of section 3.4 (`foreground`, `bounding_box`,
  `square_box`, `crop_square`, `resize_rgb`, `resize_mask`), PNG encoding (`encode_png`).
- `safe_extract_tar` and `ordered_map` (bounded, order-preserving thread pool).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import inspect
import io
import itertools
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import PIL.Image
from etils import epath
import tensorflow_datasets as tfds

CLASS_NAMES = ("chair", "table", "car")
# Folder/family names used by the writers and configs, mapped to the class label.
FAMILY_TO_CLASS = {"chairs": "chair", "tables": "table", "cars": "car"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WHITE = 255


class DatasetInputError(ValueError):
  """Bad or missing input data; the message names the file and the fix."""


class DatasetNotPreparedError(FileNotFoundError):
  """Reading a dataset whose build never completed."""


def input_error(path: Any, problem: str, fix: str) -> DatasetInputError:
  """Builds the one error format used by all builders: `<path>: <problem>. Fix: <fix>`."""
  return DatasetInputError(f"{path}: {problem}. Fix: {fix}")


# ----------------------------------------------------------------------------------------------
# Features and the base builder.


def features(image_size: int) -> tfds.features.FeaturesDict:
  """The feature table of docs/design.md for square images of side `image_size`."""
  s = int(image_size)
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(
          shape=(s, s, 3), dtype=np.uint8, encoding_format="png",
          doc="RGB on a white background."),
      "mask": tfds.features.Image(
          shape=(s, s, 1), dtype=np.uint8, encoding_format="png",
          doc="Segmentation mask: 1 on the object, 0 elsewhere."),
      "model_index": tfds.features.Scalar(
          dtype=np.int64, doc="Contiguous 0..M-1 over the models of this config."),
      "model_name": tfds.features.Text(
          doc="Upstream model id (Aubry 32-hex folder, ShapeNet id, procedural name)."),
      "class": tfds.features.ClassLabel(names=CLASS_NAMES, doc="Object class."),
      "azimuth": tfds.features.Scalar(dtype=np.float32, doc="Camera azimuth, degrees."),
      "elevation": tfds.features.Scalar(dtype=np.float32, doc="Camera elevation, degrees."),
      "view_index": tfds.features.Scalar(
          dtype=np.int64, doc="Index of the view within its model's turntable."),
      "keypoints": tfds.features.Tensor(
          shape=(None, 2), dtype=np.float32,
          doc="Pixel (x, y) of named keypoints; procedural only (K = 0 elsewhere)."),
      "keypoints_visible": tfds.features.Tensor(
          shape=(None,), dtype=np.bool_, doc="Visibility of each keypoint."),
  })


NO_KEYPOINTS = np.zeros((0, 2), np.float32)
NO_KEYPOINTS_VISIBLE = np.zeros((0,), np.bool_)


def make_example(*, image: np.ndarray, mask: np.ndarray, model_index: int, model_name: str,
                 class_name: str, azimuth: float, elevation: float, view_index: int,
                 keypoints: np.ndarray = NO_KEYPOINTS,
                 keypoints_visible: np.ndarray = NO_KEYPOINTS_VISIBLE) -> dict[str, Any]:
  """One example of `features(S)`; image uint8[S, S, 3], mask bool/uint8[S, S] in {0, 1}."""
  s = image.shape[0]
  if image.shape != (s, s, 3) or image.dtype != np.uint8:
    raise ValueError(f"image must be uint8[S, S, 3], got {image.dtype}{list(image.shape)}")
  mask = np.asarray(mask).reshape(s, s).astype(np.uint8)
  return {
      "image": encode_png(image),
      "mask": encode_png(mask),
      "model_index": int(model_index),
      "model_name": str(model_name),
      "class": class_name,
      "azimuth": np.float32(azimuth),
      "elevation": np.float32(elevation),
      "view_index": int(view_index),
      "keypoints": np.asarray(keypoints, np.float32).reshape(-1, 2),
      "keypoints_visible": np.asarray(keypoints_visible, np.bool_).reshape(-1),
  }


@dataclasses.dataclass(eq=False)
class SizedConfig(tfds.core.BuilderConfig):
  """A config with an output image size (pixels, square)."""

  image_size: int = 128


class TurntableBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the chairgen builders.

  - Stored as `array_record` unless a caller asks otherwise, so that `tfds.data_source` gives
    random access without TensorFlow.
  - One split, `train`, in generation order (model by model, view by view); the input
    pipeline makes the experiments' splits.
  - Reading a dataset that was never completely built raises `DatasetNotPreparedError`.
    TFDS writes into `<version>.incomplete.<id>/` and renames it to `<version>/` only after
    every example and `dataset_info.json` are written, so an interrupted build leaves nothing
    that `is_prepared()` accepts; by default TFDS would then return an empty dict.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  # The builders' own page. procedural_turntables is chairgen's: chairgen has no public URL
  # yet, so there is none (TFDS then shows its generic catalog address); set it once there is.
  HOMEPAGE: str | None = None

  def __init__(self, *, file_format: str | None = None, **kwargs: Any):
    super().__init__(file_format=file_format or "array_record", **kwargs)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # TFDS 4.9.10 resolves the code path of builders that live in a package through
    # `importlib_resources`, a module it only declares for Python < 3.9
    # (tensorflow/datasets#11212); the file defining the class is what it computes anyway.
    return epath.Path(inspect.getfile(cls))

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features(self.builder_config.image_size),
        homepage=self.HOMEPAGE,
        disable_shuffling=True,
    )

  def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
    # The manual dir the user asked for, kept for error messages (see `given_manual_dir`).
    download_config = kwargs.get("download_config")
    self.requested_manual_dir = getattr(download_config, "manual_dir", None)
    super().download_and_prepare(*args, **kwargs)

  def _as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
    """`tf.data` over the stored files, whichever format they are in.

    TFDS reads only tfrecord files through tf.data; its ArrayRecord adapter raises
    `NotImplementedError` ("use .as_data_source()"), so `tfds.load(name)` would fail on the
    format chairgen stores by default. Here the ArrayRecord records are read by random access
    and parsed and decoded by TFDS's own tf.data functions, so `tfds.load` and `as_dataset`
    give the same examples in either format (tests/test_datasets_tensorflow.py).
    """
    file_format = tfds.core.FileFormat.from_value(
        (read_config.file_format if read_config else None) or self.info.file_format
        or "tfrecord")
    if file_format.value != "array_record":
      return super()._as_dataset(split, decoders=decoders, read_config=read_config,
                                 shuffle_files=shuffle_files)
    return array_record_as_tf_data(self, split, decoders, read_config, shuffle_files)

  def as_data_source(self, split=None, **kwargs):
    if not self.is_prepared():
      raise DatasetNotPreparedError(
          f"{self.data_path}: dataset {self.info.full_name} is not prepared (never built, or "
          "the build was interrupted, which leaves only a `*.incomplete*` folder). Fix: "
          f"build it, e.g. `python -m chairgen.datasets.build {self.name}/"
          f"{self.builder_config.name} --data_dir={self.data_dir_root}` "
          "(add --manual_dir=... where the dataset needs one).")
    return super().as_data_source(split, **kwargs)


def array_record_as_tf_data(builder: tfds.core.DatasetBuilder, split: Any, decoders: Any,
                            read_config: tfds.ReadConfig | None, shuffle_files: bool) -> Any:
  """`tf.data.Dataset` of an ArrayRecord split, parsed and decoded as TFDS decodes tfrecords.

  Serialized records come from the random-access data source in order (or shuffled with
  `read_config.shuffle_seed` where the ordering guard is off: the datasets are ordered, as
  with tfrecord files); TFDS's `ExampleParser` and the features' `decode_example` (with any
  `decoders`, partial decoding included) run as a parallel, deterministic `map`.
  Imports TensorFlow, so only `as_dataset` and `tfds.load` reach it.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import example_parser  # pylint: disable=g-import-not-at-top

  read_config = read_config or tfds.ReadConfig()
  if read_config.add_tfds_id:
    raise NotImplementedError(
        f"{builder.info.full_name}: ReadConfig(add_tfds_id=True) needs tfrecord files. Fix: "
        "build with tfds.builder(name, file_format='tfrecord') (tfds.load(name, "
        "builder_kwargs={'file_format': 'tfrecord'})) into a separate data_dir.")
  if shuffle_files and read_config.enable_ordering_guard:
    raise ValueError(
        f"Dataset {builder.info.full_name} is an ordered dataset ('disable_shuffling=True'), "
        "but examples will not be read in order because `shuffle_files=True`. Fix: shuffle "
        "examples with ds.shuffle(...), or pass ReadConfig(enable_ordering_guard=False).")
  if isinstance(decoders, tfds.decode.PartialDecoding):
    features = decoders.extract_features(builder.info.features)
    decoders = decoders.decoders
  else:
    features = builder.info.features
  records = builder.as_data_source(
      split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
  parser = example_parser.ExampleParser(features.get_serialized_info())

  def read(index):
    record = tf.numpy_function(lambda i: records[int(i)], [index], tf.string, stateful=False)
    record.set_shape(())
    return record

  def parse_and_decode(record):
    return features.decode_example(parser.parse_example(record), decoders=decoders)

  ds = tf.data.Dataset.range(len(records))
  if shuffle_files:
    ds = ds.shuffle(len(records), seed=read_config.shuffle_seed,
                    reshuffle_each_iteration=read_config.shuffle_reshuffle_each_iteration)
  ds = ds.map(read).map(parse_and_decode, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  if read_config.assert_cardinality:
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(records)))
  return ds.with_options(read_config.options)


def given_manual_dir(dl_manager: tfds.download.DownloadManager,
                     requested: epath.PathLike | None) -> tuple[epath.Path, bool]:
  """The manual dir and whether the user chose it (rather than TFDS's `<downloads>/manual`).

  Read through the public `DownloadManager.manual_dir` (what `tfds build --manual_dir`,
  `DownloadConfig(manual_dir=...)` and TFDS's `DatasetBuilderTestCase` all set). That property
  raises when the folder is missing or empty, before anyone can say what belongs there; then
  the folder the user asked for (`requested`, from the `DownloadConfig`) is returned, so that
  the builder names it and the expected layout in its own error.
  """
  default = epath.Path(dl_manager.download_dir) / "manual"
  try:
    path = epath.Path(dl_manager.manual_dir)
  except AssertionError:  # missing or empty: TFDS's message names neither layout nor fix
    path = epath.Path(requested) if requested is not None else default
  explicit = requested is not None or os.fspath(path) != os.fspath(default)
  return path, explicit


def require_dir(path: epath.Path, what: str, fix: str) -> epath.Path:
  """`path` if it is a non-empty folder, else a `DatasetInputError` naming it."""
  if not path.exists():
    raise input_error(path, f"{what} does not exist", fix)
  if not path.is_dir():
    raise input_error(path, f"{what} is not a folder", fix)
  if not any(True for _ in path.iterdir()):
    raise input_error(path, f"{what} is empty", fix)
  return path


def visible_entries(path: epath.Path) -> list[epath.Path]:
  """Sorted folder entries, hidden files (`.DS_Store`, `._*`) left out."""
  return sorted((p for p in path.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


# ----------------------------------------------------------------------------------------------
# PNG input.


def read_png(path: epath.PathLike, fix: str) -> PIL.Image.Image:
  """Decodes the PNG at `path` completely; corrupt, truncated or non-PNG files raise.

  `fix` says what the user should do (re-extract, re-render, ...). Chunk CRCs are checked by
  `verify()`; the full decode catches truncated or corrupt image data.
  """
  path = epath.Path(path)
  try:
    data = path.read_bytes()
  except OSError as e:
    raise input_error(path, f"cannot read file ({e})", fix) from e
  if not data.startswith(PNG_SIGNATURE):
    raise input_error(path, "not a PNG file (bad signature)", fix)
  try:
    with PIL.Image.open(io.BytesIO(data)) as probe:
      probe.verify()
    image = PIL.Image.open(io.BytesIO(data))
    image.load()
  except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error, ...
    raise input_error(path, f"corrupt or truncated PNG ({type(e).__name__}: {e})", fix) from e
  return image


def rgb_and_alpha(image: PIL.Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
  """uint8[H, W, 3] RGB and float32[H, W] alpha in [0, 1] (None when the image has none).

  Palette/grey images are expanded; 16-bit images are scaled to 8 bits by Pillow.
  """
  has_alpha = image.mode in ("RGBA", "LA", "PA") or (
      image.mode == "P" and "transparency" in image.info)
  if has_alpha:
    rgba = np.asarray(image.convert("RGBA"))
    return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0
  return np.asarray(image.convert("RGB")), None


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """uint8[H, W, 3]: `rgb` over a white background with coverage `alpha` float[H, W]."""
  a = alpha[..., None]
  out = rgb.astype(np.float32) * a + WHITE * (1.0 - a)
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Masks, boxes, crops.


def foreground(rgb: np.ndarray, threshold: int) -> np.ndarray:
  """bool[H, W]: pixels whose largest channel difference from white exceeds `threshold`.

  This is the paper's "subtracting the monotonous white background" (section 3.4).
  """
  # Channel-wise minimum by slices: much faster than `rgb.min(axis=-1)` on HxWx3 uint8.
  darkest = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
  return darkest < WHITE - threshold


class Box(NamedTuple):
  """Pixel box, `top`/`left` inclusive, `bottom`/`right` exclusive (may exceed the image)."""

  top: int
  left: int
  bottom: int
  right: int

  @property
  def height(self) -> int:
    return self.bottom - self.top

  @property
  def width(self) -> int:
    return self.right - self.left


def bounding_box(mask: np.ndarray) -> Box | None:
  """Tight box around the True pixels of bool[H, W]; None when there are none."""
  rows = np.flatnonzero(mask.any(axis=1))
  if rows.size == 0:
    return None
  cols = np.flatnonzero(mask.any(axis=0))
  return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def union_box(boxes: Iterable[Box | None]) -> Box | None:
  """Smallest box holding every given box (None entries ignored)."""
  boxes = [b for b in boxes if b is not None]
  if not boxes:
    return None
  return Box(min(b.top for b in boxes), min(b.left for b in boxes),
             max(b.bottom for b in boxes), max(b.right for b in boxes))


def square_box(box: Box, border_fraction: float) -> Box:
  """The square around `box` with side `L + 2 * round(border_fraction * L)`, L = longer side.

  The shorter side is extended equally on both sides (an odd remainder goes to the
  bottom/right); the result may reach outside the image, where `crop_square` pads with white.
  """
  side = max(box.height, box.width)
  pad = int(round(border_fraction * side))
  extra_h, extra_w = side - box.height, side - box.width
  top = box.top - extra_h // 2 - pad
  left = box.left - extra_w // 2 - pad
  total = side + 2 * pad
  return Box(top, left, top + total, left + total)


def crop_square(image: np.ndarray, box: Box, fill: Any) -> np.ndarray:
  """image[box] of array[H, W, ...]; parts of `box` outside the image are set to `fill`."""
  h, w = image.shape[:2]
  out = np.full((box.height, box.width) + image.shape[2:], fill, image.dtype)
  t, l = max(box.top, 0), max(box.left, 0)
  b, r = min(box.bottom, h), min(box.right, w)
  if b > t and r > l:
    out[t - box.top:b - box.top, l - box.left:r - box.left] = image[t:b, l:r]
  return out


def _resample(src_size: int, dst_size: int) -> PIL.Image.Resampling:
  # Area averaging when shrinking: no ringing, so the white background stays exactly white
  # and integer factors are exact; bicubic only when enlarging.
  return PIL.Image.Resampling.BOX if src_size >= dst_size else PIL.Image.Resampling.BICUBIC


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
  """uint8[h, w, 3] -> uint8[size, size, 3]."""
  img = PIL.Image.fromarray(rgb)
  if img.size != (size, size):
    img = img.resize((size, size), _resample(max(img.size), size))
  return np.asarray(img)


def resize_coverage(coverage: np.ndarray, size: int) -> np.ndarray:
  """float32[h, w] in [0, 1] -> float32[size, size], area-averaged when shrinking."""
  img = PIL.Image.fromarray(coverage.astype(np.float32), mode="F")
  if img.size != (size, size):
    img = img.resize((size, size), _resample(max(img.size), size))
  return np.asarray(img, np.float32)


def resize_mask(coverage: np.ndarray, size: int) -> np.ndarray:
  """bool[size, size]: output pixels at least half covered by the object.

  `coverage` is bool or float[h, w] in [0, 1] at the source resolution; thresholding after
  area averaging also drops specks smaller than half an output pixel.
  """
  return resize_coverage(coverage.astype(np.float32), size) >= 0.5


def crop_resize(rgb: np.ndarray, coverage: np.ndarray, box: Box, size: int
                ) -> tuple[np.ndarray, np.ndarray]:
  """(uint8[size, size, 3], bool[size, size]): crop `box` (white/empty outside), resize."""
  rgb_c = crop_square(rgb, box, WHITE)
  cov_c = crop_square(coverage.astype(np.float32), box, 0.0)
  return resize_rgb(rgb_c, size), resize_mask(cov_c, size)


def encode_png(array: np.ndarray) -> bytes:
  """PNG bytes of uint8[H, W], uint8[H, W, 1] or uint8[H, W, 3]."""
  array = np.asarray(array)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  if array.dtype != np.uint8:
    array = array.astype(np.uint8)
  buf = io.BytesIO()
  PIL.Image.fromarray(array).save(buf, format="PNG", compress_level=6)
  return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Archives and parallel processing.


def _check_member(member: tarfile.TarInfo, tar_path: epath.Path, fix: str) -> None:
  """Rejects members that would land outside the target folder."""
  name = member.name
  parts = name.replace("\\", "/").split("/")
  if name.startswith(("/", "\\")):
    raise input_error(tar_path, f"archive member {name!r} has an absolute path", fix)
  if ".." in parts:
    raise input_error(tar_path, f"archive member {name!r} contains '..'", fix)
  if member.issym() or member.islnk():
    target = member.linkname
    base = _dirname(name) if member.issym() else ""
    resolved = os.path.normpath(os.path.join(base, target))
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
      raise input_error(tar_path, f"archive member {name!r} links outside the archive "
                        f"({target!r})", fix)
  elif not (member.isfile() or member.isdir()):
    raise input_error(tar_path, f"archive member {name!r} is a device or fifo", fix)


def _dirname(name: str) -> str:
  return name.rsplit("/", 1)[0] if "/" in name else ""


def safe_extract_tar(tar_path: epath.PathLike, target: epath.PathLike,
                     fix: str = "get a fresh copy of the archive from its source"
                     ) -> epath.Path:
  """Extracts `tar_path` into `target` (created), refusing path traversal.

  Every member is checked first (no absolute paths, no `..`, no links leaving the target, no
  devices); extraction goes to a temporary sibling folder that is renamed to `target` only
  when complete, so an interrupted extraction is redone, never reused half-done. An existing
  `target` is reused as is. `fix` ends the error messages (what the user should do).
  """
  tar_path, target = epath.Path(tar_path), epath.Path(target)
  if target.exists():
    return target
  tmp = target.parent / f"{target.name}.incomplete-{uuid.uuid4().hex[:8]}"
  try:
    with tarfile.open(os.fspath(tar_path), "r:*") as tar:
      members = tar.getmembers()
      for m in members:
        _check_member(m, tar_path, f"do not extract this archive; {fix}")
      tmp.mkdir(parents=True)
      kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
      tar.extractall(os.fspath(tmp), members=members, **kwargs)
  except (tarfile.TarError, EOFError, OSError) as e:
    if tmp.exists():
      shutil.rmtree(tmp)
    raise input_error(tar_path, f"cannot extract archive ({type(e).__name__}: {e})",
                      f"the file is truncated or not a tar archive; {fix}") from e
  except BaseException:
    if tmp.exists():
      shutil.rmtree(tmp)
    raise
  tmp.rename(target)
  return target


_T = TypeVar("_T")
_R = TypeVar("_R")


def ordered_map(fn: Callable[[_T], _R], items: Sequence[_T], num_threads: int
                ) -> Iterator[_R]:
  """`map(fn, items)` on a thread pool, in order, at most `num_threads + 1` items in flight.

  Pillow releases the GIL while decoding, resizing and encoding, so threads help without the
  fork-safety issues of processes (the builders may run inside a process that uses JAX).
  """
  if num_threads <= 1 or len(items) <= 1:
    yield from map(fn, items)
    return
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    it = iter(items)
    pending = collections.deque(
        pool.submit(fn, x) for x in itertools.islice(it, num_threads + 1))
    try:
      while pending:
        result = pending.popleft().result()
        for x in itertools.islice(it, 1):
          pending.append(pool.submit(fn, x))
        yield result
    finally:
      for f in pending:
        f.cancel()


def default_num_threads() -> int:
  """Worker threads for image processing: `CHAIRGEN_DATASET_THREADS` or the CPU count (<= 8)."""
  env = os.environ.get("CHAIRGEN_DATASET_THREADS")
  if env:
    return max(1, int(env))
  return max(1, min(8, os.cpu_count() or 1))
