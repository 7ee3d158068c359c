"""Input pipeline: grain over `tfds.data_source`, TensorFlow-free, sharded and resumable.

```python
pipeline = create_pipeline(config.data, seed=config.seed)
it = pipeline.train_iterator(global_batch_size)   # infinite grain DatasetIterator
batch = next(it)                                   # this process's share, numpy
test = pipeline.test_examples(max_examples)        # the held-out views, fixed order
```

Order is a function of the seed only: the train examples are shuffled by grain's index
shuffle with a fresh permutation each epoch, each epoch is cut to a whole number of global
batches, and process p of P takes rows [p·B, (p+1)·B) of each global batch, so the P
per-process batches of step t, placed on the mesh in process order (`chairgen.mesh`), form the
same global batch, in the same order, for any P. Every batch has
the same shape; the pipeline never ends. The iterator's state is one integer; it is saved with
the training checkpoint as `grain.checkpoint.CheckpointSave(iterator)` inside
`ocp.args.Composite` and restored into a fresh `train_iterator` of the same config, seed and
batch size with `grain.checkpoint.CheckpointRestore` (see `chairgen.checkpoints`).

Batch format (B = global_batch_size / process_count, S = image size):
  image uint8[B, S, S, 3] (white background), mask uint8[B, S, S, 1] in {0, 1},
  style int32[B] (contiguous model index over the models that have training views),
  view float32[B, 4] = (sin az, cos az, sin el, cos el), azimuth, elevation float32[B] degrees.

Splits are made by `chairgen.splits` from per-example metadata; see docs/input_pipeline.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import functools
import hashlib
import importlib
import sys
from typing import Any

from absl import flags
import grain
import jax
import ml_collections
import numpy as np

from chairgen import distributed
from chairgen import splits

Batch = dict[str, np.ndarray]
RecordSource = Sequence[Mapping[str, Any]]  # What tfds.data_source returns: records by index.
BATCH_KEYS = ("image", "mask", "style", "view", "azimuth", "elevation")  # Every batch's keys.


def default_config() -> ml_collections.ConfigDict:
  """The `config.data` fields and their defaults."""
  c = ml_collections.ConfigDict()
  # One TFDS name ('name/config'), or several joined by '+' to read them as one dataset
  # (e.g. chairs + tables); model ids are then made contiguous across them.
  c.name = "procedural_turntables/tiny"
  c.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: TFDS default.
  # Build a missing procedural dataset on first use (no download needed). Other builders
  # must be built first (`python -m chairgen.datasets.build ...`); the error says how.
  c.build_if_missing = True
  # heldout_views | all | by_style | by_elevation | by_class (see chairgen.splits).
  c.split = "heldout_views"
  c.heldout_views_per_model = 2         # heldout_views, all, by_class.
  c.target_fraction = 0.1               # by_style: fraction of styles in the target set.
  c.views_per_target_style = 4          # by_style: k (paper: 1, 2, 4, 8, 15).
  c.transfer = True                     # by_style: source styles keep all views.
  # by_style: elevation of the k views; None = each model's lower-median elevation.
  c.style_split_elevation = ml_collections.FieldReference(None, field_type=float)
  # by_elevation: the elevations each named class trains on; its other views are the test
  # set, classes not named keep all views. Default: Figure 10 (chairs at Aubry's 20, 30) and
  # Figure 11 (tables at 0..40, so 50..90 are held out when rendered) from one network.
  c.train_elevations = ml_collections.ConfigDict({
      "chair": (20.0, 30.0), "table": (0.0, 10.0, 20.0, 30.0, 40.0)})
  # by_elevation: read only the models of these classes, e.g. ('chair',) for the chairs-only
  # baseline of Figure 10 from a chairs + tables dataset; None = every class read.
  c.elevation_classes = ml_collections.FieldReference(None, field_type=tuple)
  c.classes = ("chair", "table")        # by_class.
  # Keep only the first N models (by model index) after splitting, e.g. the training-set size
  # sweep of Table 2; nested sizes share their held-out views. None = every model.
  c.num_models = ml_collections.FieldReference(None, field_type=int)
  # Sampling weights per class when reading several classes, e.g. 'chair:1,table:1' draws
  # chairs and tables equally often whatever their counts. '' = natural proportions (every
  # training example once per epoch).
  c.class_weights = ""
  # Decoded examples held in memory: 'auto' caches when they fit in cache_max_bytes.
  c.cache = "auto"                      # 'auto' | 'yes' | 'no'.
  c.cache_max_bytes = 2 * 1024**3
  c.num_threads = 2                     # grain read threads per process.
  c.num_workers = 0                     # grain worker processes (mp_prefetch); 0 = none.
  c.prefetch = 8                        # batches buffered ahead.
  return c


def view_encoding(azimuth_deg, elevation_deg):
  """(sin az, cos az, sin el, cos el), float32[..., 4]; numpy in, numpy out; jax in, jax out."""
  is_jax = isinstance(azimuth_deg, jax.Array) or isinstance(elevation_deg, jax.Array)
  xp = jax.numpy if is_jax else np
  az = xp.deg2rad(xp.asarray(azimuth_deg, xp.float32))
  el = xp.deg2rad(xp.asarray(elevation_deg, xp.float32))
  return xp.stack([xp.sin(az), xp.cos(az), xp.sin(el), xp.cos(el)], axis=-1).astype(xp.float32)


def style_encoding(index, num_styles: int):
  """One-hot float32[..., num_styles] of integer style ids; numpy or jax like the input."""
  xp = jax.numpy if isinstance(index, jax.Array) else np
  index = xp.asarray(index)
  if xp is np and index.size and (index.min() < 0 or index.max() >= num_styles):
    raise ValueError(f"style ids must be in [0, {num_styles}); got {index.min()}..{index.max()}.")
  return (index[..., None] == xp.arange(num_styles)).astype(xp.float32)


def _seed32(seed: int, purpose: str) -> int:
  """A 32-bit seed for grain, hashed so that seed s epoch e+1 != seed s+1 epoch e."""
  digest = hashlib.sha256(f"chairgen/{purpose}/{int(seed)}".encode()).digest()
  return int.from_bytes(digest[:4], "little")


def parse_class_weights(text: str) -> dict[int, float]:
  """'chair:1,table:2' -> {class id: weight}; '' -> {} (natural proportions)."""
  weights = {}
  for item in [t.strip() for t in (text or "").split(",") if t.strip()]:
    name, _, value = item.partition(":")
    try:
      weight = float(value)
    except ValueError:
      weight = -1.0
    if weight <= 0 or name.strip() not in splits.CLASS_NAMES:
      raise ValueError(f"class_weights item {item!r}: expected 'class:weight' with class in "
                       f"{splits.CLASS_NAMES} and weight > 0, e.g. 'chair:1,table:1'.")
    weights[splits.CLASS_NAMES.index(name.strip())] = weight
  return weights


_METADATA_KEYS = ("model_index", "azimuth", "elevation", "class", "model_name")


def _read_metadata(source: RecordSource, chunk: int = 4096) -> dict[str, np.ndarray]:
  """Per-example metadata columns of one source, read in chunks (`__getitems__` when offered)."""
  cols = {k: [] for k in _METADATA_KEYS}
  getitems = getattr(source, "__getitems__", None)
  for start in range(0, len(source), chunk):
    keys = list(range(start, min(len(source), start + chunk)))
    for record in (getitems(keys) if getitems else [source[i] for i in keys]):
      for k in _METADATA_KEYS:
        cols[k].append(record[k])
  return {
      "model_index": np.asarray(cols["model_index"], np.int64),
      "azimuth": np.asarray(cols["azimuth"], np.float32),
      "elevation": np.asarray(cols["elevation"], np.float32),
      "class": np.asarray(cols["class"], np.int64),
      "model_name": np.asarray([n.decode() if isinstance(n, bytes) else str(n)
                                for n in cols["model_name"]], dtype=object),
  }


class ScalarFieldsSource:
  """The metadata fields of stored records, parsed straight from their tf.Example protos.

  Wraps a `tfds.data_source(..., deserialize_method=RAW_BYTES)`; faster to scan than
  TFDS's own deserialisation with images skipped, which matters for 10^6 views
  (docs/performance.md, "Measurements behind the code").
  `open_tfds_sources` checks it against TFDS's decoding on the first record and falls back to
  TFDS if they differ.
  """

  def __init__(self, raw_source: Sequence[bytes]):
    from tensorflow_datasets.proto import tf_example_pb2  # pylint: disable=g-import-not-at-top
    self._raw = raw_source
    self._example = tf_example_pb2.Example

  def __len__(self) -> int:
    return len(self._raw)

  def _parse(self, record: bytes) -> dict[str, Any]:
    f = self._example.FromString(record).features.feature
    return {"model_index": f["model_index"].int64_list.value[0],
            "azimuth": f["azimuth"].float_list.value[0],
            "elevation": f["elevation"].float_list.value[0],
            "class": f["class"].int64_list.value[0],
            "model_name": f["model_name"].bytes_list.value[0]}

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self._parse(self._raw[index])

  def __getitems__(self, keys: Sequence[int]) -> list[dict[str, Any]]:
    return [self._parse(r) for r in self._raw.__getitems__(keys)]


class Pipeline:
  """The train stream and test set of one data config; built by `create_pipeline`.

  Args:
    sources: random-access sequences of records in the builders' feature format (what
      `tfds.data_source(...)` returns: decoded numpy images, Python scalars), read as one
      dataset in this order.
    config: `default_config()` fields.
    seed: the split and the shuffle are functions of it.
    metadata_sources: optional sequences parallel to `sources` that return the same records
      without decoding the images (faster to scan); default `sources`.
    process_index, process_count: default `jax.process_index()`, `jax.process_count()`.
  """

  def __init__(self, sources: Sequence[RecordSource], config: ml_collections.ConfigDict,
               seed: int, *, metadata_sources: Sequence[RecordSource] | None = None,
               process_index: int | None = None, process_count: int | None = None):
    if not sources:
      raise ValueError("No data sources given.")
    self._sources = list(sources)
    self._config = config
    self._seed = int(seed)
    self.process_index = jax.process_index() if process_index is None else process_index
    self.process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= self.process_index < self.process_count:
      raise ValueError(f"process_index {self.process_index} not in [0, {self.process_count}).")

    lengths = np.array([len(s) for s in self._sources], np.int64)
    if (lengths == 0).any():
      raise ValueError(f"Empty data source(s): lengths {lengths.tolist()}.")
    self._starts = np.concatenate([[0], np.cumsum(lengths)])
    metas = [_read_metadata(s) for s in (metadata_sources or self._sources)]
    model_offsets = np.concatenate([[0], np.cumsum([m["model_index"].max() + 1 for m in metas])])
    self.metadata = splits.Metadata(
        model=np.concatenate([m["model_index"] + o for m, o in zip(metas, model_offsets)]),
        azimuth=np.concatenate([m["azimuth"] for m in metas]),
        elevation=np.concatenate([m["elevation"] for m in metas]),
        class_id=np.concatenate([m["class"] for m in metas]),
    )
    self.split = splits.make_split(self.metadata, config, self._seed)
    self._style_lookup, self.num_styles = splits.contiguous_styles(self.metadata.model,
                                                                   self.split.train)
    names = np.concatenate([m["model_name"] for m in metas])
    first_record = np.unique(self.metadata.model, return_index=True)
    name_of_model = dict(zip(first_record[0].tolist(), names[first_record[1]].tolist()))
    # style_names[style] is the upstream model name of that style (for figures and run info).
    self.style_names = [name_of_model[m] for m in np.flatnonzero(self._style_lookup >= 0)]
    self.num_train = len(self.split.train)
    self.num_test = len(self.split.test)
    self._view = view_encoding(self.metadata.azimuth, self.metadata.elevation)

    first = self._sources[0][0]
    self.image_size = int(first["image"].shape[0])
    self._cache = None
    if self._should_cache(len(self.metadata)):
      self._cache = self._decode_all()

  # -- reading -------------------------------------------------------------------------------

  def _should_cache(self, n: int) -> bool:
    mode = self._config.cache
    if mode not in ("auto", "yes", "no"):
      raise ValueError(f"config.cache must be 'auto', 'yes' or 'no', got {mode!r}.")
    if mode == "auto":
      return n * self.image_size**2 * 4 <= self._config.cache_max_bytes
    return mode == "yes"

  def _record(self, example_id: int) -> Mapping[str, Any]:
    s = int(np.searchsorted(self._starts, example_id, side="right")) - 1
    return self._sources[s][int(example_id - self._starts[s])]

  def _decode(self, example_id: int) -> tuple[np.ndarray, np.ndarray]:
    record = self._record(example_id)
    image, mask = np.asarray(record["image"]), np.asarray(record["mask"])
    size = self.image_size
    if image.shape != (size, size, 3) or mask.shape[:2] != (size, size):
      raise ValueError(
          f"Example {example_id}: image {image.shape}, mask {mask.shape}; expected ({size}, "
          f"{size}, 3) and ({size}, {size}, 1). Sources read together must share one image size.")
    return image.astype(np.uint8, copy=False), (mask.reshape(size, size, 1) > 0).astype(np.uint8)

  def _decode_all(self) -> tuple[np.ndarray, np.ndarray]:
    n, s = len(self.metadata), self.image_size
    images = np.empty((n, s, s, 3), np.uint8)
    masks = np.empty((n, s, s, 1), np.uint8)
    for i in range(n):
      images[i], masks[i] = self._decode(i)
    return images, masks

  def load_batch(self, example_ids: np.ndarray) -> Batch:
    """Reads and encodes examples: int64[B] ids into the concatenated sources -> batch dict."""
    ids = np.asarray(example_ids, np.int64)
    if self._cache is not None:
      image, mask = self._cache[0][ids], self._cache[1][ids]
    else:
      pairs = [self._decode(i) for i in ids]
      image = np.stack([p[0] for p in pairs])
      mask = np.stack([p[1] for p in pairs])
    style = self._style_lookup[self.metadata.model[ids]]
    return {
        "image": image,
        "mask": mask,
        "style": style.astype(np.int32),
        "view": self._view[ids],
        "azimuth": self.metadata.azimuth[ids],
        "elevation": self.metadata.elevation[ids],
    }

  def _load_rows(self, example_ids: np.ndarray, rows: slice) -> Batch:
    return self.load_batch(example_ids[rows])

  def load_keypoints(self, example_ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixel (x, y) f32[K, 2], visible bool[K]) of each example at the stored image size, in
    the builder's keypoint order; K = 0 where the data has none (the real datasets)."""
    out = []
    for i in np.asarray(example_ids, np.int64):
      record = self._record(int(i))
      xy = np.asarray(record.get("keypoints", np.zeros((0, 2))), np.float32).reshape(-1, 2)
      visible = np.asarray(record.get("keypoints_visible", np.zeros(0)), bool).reshape(-1)
      out.append((xy, visible))
    return out

  # -- public ---------------------------------------------------------------------------------

  def train_dataset(self, global_batch_size: int) -> grain.IterDataset:
    """The grain dataset behind `train_iterator` (exposed for composition and inspection)."""
    g, p, count = int(global_batch_size), self.process_index, self.process_count
    if g <= 0 or g % count:
      raise ValueError(
          f"global_batch_size {g} must be a positive multiple of process_count {count}.")
    per_epoch = (self.num_train // g) * g
    if per_epoch == 0:
      raise ValueError(
          f"Only {self.num_train} training examples, fewer than global_batch_size {g}. "
          "Lower the batch size or use more data.")
    weights = parse_class_weights(self._config.class_weights)
    if weights:
      ds = self._class_mixture(weights)
    else:
      ds = grain.MapDataset.source(self.split.train)
      ds = ds.shuffle(seed=_seed32(self._seed, "train_order"))  # New permutation each epoch.
      ds = ds[:per_epoch]          # Drop the epoch's remainder: batches never straddle epochs.
      ds = ds.repeat(None)
    rows = slice(p * (g // count), (p + 1) * (g // count))  # this process's share of each batch
    ds = ds.batch(g, drop_remainder=True).map(functools.partial(self._load_rows, rows=rows))
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._config.num_threads,
                                                 prefetch_buffer_size=self._config.prefetch))
    if self._config.num_workers > 0:
      # grain's worker processes read absl flags; outside an absl app (notebooks, pytest)
      # nothing parsed them, so let them take their defaults.
      if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
      it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._config.num_workers))
    return it_ds

  def _class_mixture(self, weights: dict[int, float]) -> grain.MapDataset:
    """Infinite mixture of per-class shuffled, repeated train streams, drawn by weight."""
    train_classes = set(self.metadata.class_id[self.split.train].tolist())
    names = {splits.CLASS_NAMES[c] for c in train_classes}
    if set(weights) != train_classes:
      raise ValueError(
          f"class_weights {self._config.class_weights!r} must name exactly the classes in "
          f"training, {sorted(names)}.")
    parts = []
    for c in sorted(weights):
      ids = self.split.train[self.metadata.class_id[self.split.train] == c]
      parts.append(grain.MapDataset.source(ids)
                   .shuffle(seed=_seed32(self._seed, f"train_order/{c}")).repeat(None))
    return grain.MapDataset.mix(parts, [weights[c] for c in sorted(weights)])

  def train_iterator(self, global_batch_size: int) -> grain.DatasetIterator:
    """Infinite iterator of this process's share of each global batch (see module doc)."""
    return iter(self.train_dataset(global_batch_size))

  @property
  def style_lookup(self) -> np.ndarray:
    """int32[M]: the style (network input index) of each model id, -1 if it has no training view."""
    return self._style_lookup

  @property
  def target_style_ids(self) -> np.ndarray:
    """by_style: the styles (int32, as in batches) of the target set; empty for other splits."""
    return self._style_lookup[self.split.target_styles]

  def test_ids(self, max_examples: int | None = None) -> np.ndarray:
    """Test example ids in the fixed order (model, elevation, azimuth), the first max_examples."""
    ids = self.split.test
    meta = self.metadata
    order = np.lexsort((meta.azimuth[ids], meta.elevation[ids], meta.model[ids]))
    return ids[order][:max_examples]

  def test_examples(self, max_examples: int | None = None) -> Batch:
    """The test set (the same on every process), batch format, fixed order."""
    return self.load_batch(self.test_ids(max_examples))


# -- TFDS ---------------------------------------------------------------------------------------


def register_builder(name: str) -> None:
  """Registers the chairgen TFDS builders (all of them; `name` is for the error message)."""
  try:
    importlib.import_module("chairgen.datasets")
  except ImportError as e:
    raise ImportError(f"The chairgen TFDS builders (needed for {name!r}) could not be "
                      f"imported: {e}") from e


def _ensure_built(name: str, data_dir: str | None, build_if_missing: bool) -> None:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  register_builder(name)
  builder = tfds.builder(name, data_dir=data_dir)
  if name.split("/")[0] == "procedural_turntables" and build_if_missing:
    # Process 0 renders a missing set; the others wait, then find it prepared (TFDS writes into
    # a temporary folder and renames it when complete). Every process passes the barrier,
    # built or not, so that none can miss it by finding the set already built.
    if not builder.is_prepared() and distributed.is_primary():
      print(f"[input_pipeline] {name} is not built in {builder.data_dir}; rendering it now "
            "(procedural, no download).", file=sys.stderr, flush=True)
      builder.download_and_prepare()
      print(f"[input_pipeline] built {name}.", file=sys.stderr, flush=True)
    distributed.wait_for_primary(f"build {name}")
    if not builder.is_prepared():
      raise FileNotFoundError(f"{name} is not built in {builder.data_dir} after process 0 built "
                              "it: every process needs the same data_dir on a filesystem all "
                              "of them see (config.data.data_dir).")
    return
  if builder.is_prepared():
    return
  data_dir_flag = f" --data_dir={data_dir}" if data_dir else ""
  raise FileNotFoundError(
      f"Dataset {name} is not built in {builder.data_dir}. Build it first: "
      f"`python -m chairgen.datasets.build {name} --manual_dir=...{data_dir_flag}` "
      "(see docs/datasets.md), or point config.data.data_dir at the folder holding it.")


def _metadata_source(tfds, name: str, data_dir: str | None, source: RecordSource
                     ) -> RecordSource:
  """The fastest source of metadata fields that agrees with TFDS on the first record."""
  skip = tfds.decode.SkipDecoding()
  slow = tfds.data_source(name, split="train", data_dir=data_dir, download=False,
                          decoders={"image": skip, "mask": skip})
  try:
    fast = ScalarFieldsSource(tfds.data_source(
        name, split="train", data_dir=data_dir, download=False,
        deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES))
    want = {k: source[0][k] for k in _METADATA_KEYS}
    if len(fast) == len(source) and fast[0] == want:
      return fast
  except Exception:  # pylint: disable=broad-except  (another storage format: use TFDS's path)
    pass
  return slow


def open_tfds_sources(name: str, data_dir: str | None = None, build_if_missing: bool = True
                      ) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
  """Opens `tfds.data_source` for each '+'-joined name: (decoded sources, metadata sources).

  Metadata sources skip image decoding, so scanning them for the splits is cheap.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  sources, metas = [], []
  for part in [n.strip() for n in name.split("+") if n.strip()]:
    _ensure_built(part, data_dir, build_if_missing)
    source = tfds.data_source(part, split="train", data_dir=data_dir, download=False)
    sources.append(source)
    metas.append(_metadata_source(tfds, part, data_dir, source))
  if not sources:
    raise ValueError(f"config.data.name {name!r} names no dataset.")
  return sources, metas


def create_pipeline(config: ml_collections.ConfigDict, seed: int) -> Pipeline:
  """The pipeline for `config` (fields of `default_config()`), building a missing procedural set."""
  sources, metas = open_tfds_sources(config.name, config.data_dir, config.build_if_missing)
  return Pipeline(sources, config, seed, metadata_sources=metas)


# -- devices and checkpoints --------------------------------------------------------------------


def shard_batch(batch: Batch, sharding: jax.sharding.Sharding) -> dict[str, jax.Array]:
  """Places this process's numpy batch on the mesh as global arrays (leading axis sharded).

  `sharding` is typically `NamedSharding(mesh, PartitionSpec('data'))`; every process passes
  its own share and gets the global array of B * process_count rows.
  """
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}

