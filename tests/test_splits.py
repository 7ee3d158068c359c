"""Tests for chairgen.splits: no held-out view leaks into training, counts, determinism."""

import numpy as np
import pytest

from chairgen import input_pipeline
from chairgen import splits

AUBRY_AZ = [int(i * 360 / 31) for i in range(31)]


def turntables(num_models, azimuths, elevations, class_id=0, model_offset=0, seed=0):
  """Metadata of full turntables, records in a shuffled order (as TFDS stores them)."""
  m, e, a = np.meshgrid(np.arange(num_models) + model_offset, elevations, azimuths, indexing="ij")
  order = np.random.default_rng(seed).permutation(m.size)
  return splits.Metadata(model=m.ravel()[order].astype(np.int64),
                         azimuth=a.ravel()[order].astype(np.float32),
                         elevation=e.ravel()[order].astype(np.float32),
                         class_id=np.full(m.size, class_id, np.int64))


def concat(*metas):
  return splits.Metadata(*(np.concatenate([getattr(m, f) for m in metas])
                           for f in ("model", "azimuth", "elevation", "class_id")))


def chairs_and_tables():
  chairs = turntables(10, AUBRY_AZ, (20, 30), class_id=0)
  tables = turntables(6, range(0, 360, 10), (0, 10, 20, 30, 40), class_id=1, model_offset=10)
  return concat(chairs, tables)


def keys(meta, ids):
  """(model, azimuth, elevation) triples: what a 'view of a style' is."""
  return set(zip(meta.model[ids].tolist(), meta.azimuth[ids].tolist(),
                 meta.elevation[ids].tolist()))


def assert_no_leak(meta, split):
  assert not set(split.train.tolist()) & set(split.test.tolist())
  assert not keys(meta, split.train) & keys(meta, split.test)
  assert split.test.size > 0 and split.train.size > 0


def config(**overrides):
  c = input_pipeline.default_config()
  c.update(overrides)
  return c


ALL_CONFIGS = [
    config(split="heldout_views"),
    config(split="by_style", views_per_target_style=1, transfer=True),
    config(split="by_style", views_per_target_style=15, transfer=False),
    config(split="by_elevation", train_elevations={"chair": (20.0,), "table": (0.0, 10.0)}),
    config(split="by_class", classes=("chair", "table")),
]


@pytest.mark.parametrize("cfg", ALL_CONFIGS, ids=lambda c: f"{c.split}")
def test_no_heldout_view_in_train_and_deterministic(cfg):
  meta = chairs_and_tables()
  split = splits.make_split(meta, cfg, seed=3)
  assert_no_leak(meta, split)
  again = splits.make_split(meta, cfg, seed=3)
  np.testing.assert_array_equal(split.train, again.train)
  np.testing.assert_array_equal(split.test, again.test)
  # Every model that is tested on is trained on (its style is known).
  assert set(meta.model[split.test].tolist()) <= set(meta.model[split.train].tolist())


def test_split_does_not_depend_on_record_order():
  a, b = turntables(8, AUBRY_AZ, (20, 30), seed=0), turntables(8, AUBRY_AZ, (20, 30), seed=1)
  for cfg in (config(split="heldout_views"), config(split="by_style", views_per_target_style=4)):
    assert keys(a, splits.make_split(a, cfg, 5).test) == keys(b, splits.make_split(b, cfg, 5).test)


def test_heldout_views_counts_and_seeds():
  meta = turntables(20, AUBRY_AZ, (20, 30))
  split = splits.heldout_views(meta, views_per_model=3, seed=0)
  assert split.test.size == 20 * 3 and split.train.size == 20 * 59
  assert np.all(np.bincount(meta.model[split.test]) == 3)
  other = splits.heldout_views(meta, views_per_model=3, seed=1)
  assert keys(meta, other.test) != keys(meta, split.test)


def test_heldout_views_refuses_to_hold_out_everything():
  meta = turntables(2, (0, 90), (20,))
  with pytest.raises(ValueError, match="heldout_views_per_model"):
    splits.heldout_views(meta, views_per_model=2, seed=0)


def test_all_trains_on_everything_and_tests_on_a_fixed_subset():
  meta = turntables(5, AUBRY_AZ, (20, 30))
  split = splits.all_views(meta, views_per_model=2, seed=0)
  assert split.train.size == len(meta)
  heldout = splits.heldout_views(meta, views_per_model=2, seed=0)
  np.testing.assert_array_equal(split.test, heldout.test)


@pytest.mark.parametrize("k", [1, 2, 4, 8, 15])
@pytest.mark.parametrize("transfer", [True, False])
def test_by_style_paper_protocol(k, transfer):
  meta = turntables(50, AUBRY_AZ, (20, 30))
  split = splits.by_style(meta, target_fraction=0.1, views_per_target_style=k,
                          transfer=transfer, seed=0)
  assert_no_leak(meta, split)
  target = split.target_styles
  assert len(target) == 5
  train_counts = np.bincount(meta.model[split.train], minlength=50)
  source = np.setdiff1d(np.arange(50), target)
  assert np.all(train_counts[target] == k)
  assert np.all(train_counts[source] == (62 if transfer else k))
  # The test set is exactly the other views of the target styles on the kept ring (20).
  assert split.test.size == 5 * (31 - k)
  assert set(meta.model[split.test].tolist()) == set(target.tolist())
  assert np.all(meta.elevation[split.test] == 20)
  # The kept views of a target style: k distinct azimuths at the default elevation (20).
  kept = split.train[np.isin(meta.model[split.train], target[:1])]
  assert np.all(meta.elevation[kept] == 20)
  assert len(set(meta.azimuth[kept].tolist())) == k


def test_by_style_views_are_evenly_spaced():
  meta = turntables(20, range(0, 360, 10), (0, 10, 20, 30, 40))
  split = splits.by_style(meta, target_fraction=0.1, views_per_target_style=4, transfer=True,
                          seed=0)
  kept = split.train[meta.model[split.train] == split.target_styles[0]]
  assert sorted(meta.azimuth[kept].tolist()) == [0, 90, 180, 270]
  assert np.all(meta.elevation[kept] == 20)
  with_el = splits.by_style(meta, target_fraction=0.1, views_per_target_style=2, transfer=True,
                            seed=0, elevation=40)
  kept = with_el.train[meta.model[with_el.train] == with_el.target_styles[0]]
  views = sorted(zip(meta.azimuth[kept].tolist(), meta.elevation[kept].tolist()))
  assert views == [(0, 40), (180, 40)]


@pytest.mark.parametrize("k", [1, 2, 4, 8, 15])
def test_by_style_settings_differ_only_in_the_source_views(k):
  """Figure 9's two curves: same targets, same target views, same test; sources all vs k."""
  meta = turntables(40, AUBRY_AZ, (20, 30))
  with_t, without = (splits.by_style(meta, target_fraction=0.1, views_per_target_style=k,
                                     transfer=t, seed=3) for t in (True, False))
  np.testing.assert_array_equal(with_t.target_styles, without.target_styles)
  np.testing.assert_array_equal(with_t.test, without.test)
  is_target = lambda ids: np.isin(meta.model[ids], with_t.target_styles)
  np.testing.assert_array_equal(with_t.train[is_target(with_t.train)],
                                without.train[is_target(without.train)])
  source_with = with_t.train[~is_target(with_t.train)]
  source_without = without.train[~is_target(without.train)]
  assert set(source_without.tolist()) < set(source_with.tolist())
  assert len(source_with) == 36 * 62 and len(source_without) == 36 * k
  # No test view of a target style is in either training split.
  for split in (with_t, without):
    assert not set(split.test.tolist()) & set(split.train.tolist())
    assert not keys(meta, split.test) & keys(meta, split.train)


def test_by_style_target_set_depends_on_seed_only():
  meta = turntables(40, AUBRY_AZ, (20, 30))
  targets = {
      (k, t): splits.by_style(meta, target_fraction=0.1, views_per_target_style=k, transfer=t,
                              seed=7).target_styles.tolist()
      for k in (1, 15) for t in (True, False)
  }
  assert len({tuple(v) for v in targets.values()}) == 1
  other = splits.by_style(meta, target_fraction=0.1, views_per_target_style=1, transfer=True,
                          seed=8)
  assert other.target_styles.tolist() != targets[(1, True)]


def test_by_style_errors():
  meta = turntables(10, AUBRY_AZ, (20, 30))
  with pytest.raises(ValueError, match="cannot keep 32"):
    splits.by_style(meta, target_fraction=0.1, views_per_target_style=32, transfer=True, seed=0)
  with pytest.raises(ValueError, match="target styles"):
    splits.by_style(meta, target_fraction=0.01, views_per_target_style=1, transfer=True, seed=0)


def test_by_elevation_restricts_only_the_named_classes():
  meta = concat(turntables(4, range(0, 360, 30), range(0, 100, 10), class_id=0),
                turntables(3, range(0, 360, 30), range(0, 100, 10), class_id=1, model_offset=4))
  split = splits.by_elevation(meta, train_elevations={"chair": (20, 30)})
  assert_no_leak(meta, split)
  chair_train = split.train[meta.class_id[split.train] == 0]
  assert set(meta.elevation[chair_train].tolist()) == {20, 30}
  assert set(meta.elevation[split.test].tolist()) == {0, 10, 40, 50, 60, 70, 80, 90}
  assert np.all(meta.class_id[split.test] == 0)
  assert np.sum(meta.class_id[split.train] == 1) == 3 * 12 * 10  # Tables keep every view.
  # Figures 10 and 11 from one network: tables' 50..90 are held out as well.
  both = splits.by_elevation(
      meta, train_elevations={"chair": (20, 30), "table": (0, 10, 20, 30, 40)})
  assert_no_leak(meta, both)
  table_test = both.test[meta.class_id[both.test] == 1]
  assert set(meta.elevation[table_test].tolist()) == {50, 60, 70, 80, 90}
  assert both.test.size == 4 * 12 * 8 + 3 * 12 * 5


def test_by_elevation_on_one_class_ignores_limits_of_absent_classes():
  meta = turntables(3, range(0, 360, 30), (0, 10, 20, 30, 40))
  split = splits.by_elevation(meta, train_elevations={"chair": (20, 30), "table": (0,)})
  assert split.test.size == 3 * 12 * 3


def test_by_elevation_reads_only_the_given_classes():
  meta = concat(turntables(4, range(0, 360, 30), range(0, 100, 10), class_id=0),
                turntables(3, range(0, 360, 30), range(0, 100, 10), class_id=1, model_offset=4))
  limits = {"chair": (20, 30), "table": (0, 10, 20, 30, 40)}
  chairs = splits.by_elevation(meta, train_elevations=limits, classes=("chair",))
  tables = splits.by_elevation(meta, train_elevations=limits, classes=("table",))
  for split, cls in ((chairs, 0), (tables, 1)):
    assert_no_leak(meta, split)
    assert np.all(meta.class_id[split.train] == cls) and np.all(meta.class_id[split.test] == cls)
  assert set(meta.elevation[tables.test].tolist()) == {50, 60, 70, 80, 90}
  with pytest.raises(ValueError, match="No examples of classes"):
    splits.by_elevation(turntables(2, (0,), (20,)), train_elevations=limits, classes=("table",))


def test_by_elevation_on_real_data_has_an_empty_test_set():
  """Aubry chairs (20, 30) + ShapeNet tables (0..40): nothing unseen is stored, still trains."""
  meta = chairs_and_tables()
  split = splits.by_elevation(
      meta, train_elevations={"chair": (20, 30), "table": (0, 10, 20, 30, 40)})
  assert split.test.size == 0 and split.train.size == len(meta)


def test_by_elevation_errors():
  meta = turntables(3, AUBRY_AZ, (20, 30))
  with pytest.raises(ValueError, match="name the classes you read"):
    splits.by_elevation(meta, train_elevations={"table": (20,)})
  with pytest.raises(ValueError, match="its elevations are"):
    splits.by_elevation(meta, train_elevations={"chair": (10,)})
  with pytest.raises(ValueError, match="Unknown classes"):
    splits.by_elevation(meta, train_elevations={"sofa": (20,)})


def test_by_class_keeps_only_the_requested_classes():
  meta = chairs_and_tables()
  only_chairs = splits.by_class(meta, classes=("chair",), views_per_model=2, seed=0)
  assert_no_leak(meta, only_chairs)
  assert np.all(meta.class_id[only_chairs.train] == 0)
  assert np.all(meta.class_id[only_chairs.test] == 0)
  assert only_chairs.test.size == 10 * 2
  both = splits.by_class(meta, classes=("chair", "table"), views_per_model=2, seed=0)
  assert both.test.size == 16 * 2 and both.train.size == len(meta) - 32
  with pytest.raises(ValueError, match="car"):
    splits.by_class(meta, classes=("car",), views_per_model=2, seed=0)


def test_contiguous_styles_skip_untrained_models():
  model = np.array([0, 0, 3, 3, 5, 5])
  lookup, num = splits.contiguous_styles(model, train=np.array([0, 4, 5]))
  assert num == 2
  assert lookup.tolist() == [0, -1, -1, -1, -1, 1]


def test_unknown_split_is_named():
  with pytest.raises(ValueError, match="by_style"):
    splits.make_split(turntables(2, (0, 90), (20,)), config(split="random"), seed=0)


def test_num_models_keeps_the_first_models_and_their_heldout_views():
  model = np.repeat(np.arange(6), 10)
  meta = splits.Metadata(model=model, azimuth=np.tile(np.arange(10) * 36.0, 6).astype(np.float32),
                         elevation=np.full(60, 20.0, np.float32),
                         class_id=np.zeros(60, np.int64))
  config = input_pipeline.default_config()
  full = splits.make_split(meta, config, seed=0)
  config.num_models = 3
  part = splits.make_split(meta, config, seed=0)
  assert set(model[part.train]) == set(model[part.test]) == {0, 1, 2}
  np.testing.assert_array_equal(part.test, full.test[model[full.test] < 3])
  config.num_models = 7
  with pytest.raises(ValueError, match="num_models=7, but the data has 6 models"):
    splits.make_split(meta, config, seed=0)
