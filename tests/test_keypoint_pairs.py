"""Section 5.7's benchmark pairs: procedural ground truth, splits, pair files, the evaluator."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from chairgen import correspondence
from chairgen import evaluators
from chairgen import inference
from chairgen import keypoint_pairs
from chairgen import sampling
from chairgen import style_space

# One cheap setting per method: these tests check the plumbing, not the tuning.
FAST = {"grids": {"dis": {"preset": ["fast"]}, "variational": {"alpha": [5.0]},
                  "sift": {"size": [8.0]}},
        "num_frames": 6, "work_size": 32, "show": 1}


@pytest.fixture(scope="module")
def trained(trained_run):
  return inference.load(trained_run)


@pytest.fixture(scope="module")
def view(trained):
  return keypoint_pairs.shared_view(trained, 34.0, 20.0)


@pytest.fixture(scope="module")
def pairs(trained, view):
  return keypoint_pairs.procedural_pairs(
      trained, *view, jax.random.key(0), num_validation=2, num_test=2, simple_fraction=0.5,
      simple_max=4, difficult_min=5, validation_fraction=0.5)


def test_factor_distance_counts_the_differing_factors():
  a = {n: "x" for n in keypoint_pairs.STRUCTURE_FACTORS}
  b = dict(a, seat_shape="y", armrests=True)
  assert keypoint_pairs.factor_distance(a, a) == 0
  assert keypoint_pairs.factor_distance(a, b) == 2
  assert keypoint_pairs.difficulty_of(2, 3, 6) == keypoint_pairs.SIMPLE
  assert keypoint_pairs.difficulty_of(4, 3, 6) is None
  assert keypoint_pairs.difficulty_of(6, 3, 6) == keypoint_pairs.DIFFICULT
  with pytest.raises(ValueError, match="below"):
    keypoint_pairs.difficulty_of(2, 6, 3)
  with pytest.raises(KeyError, match="seat_shape"):
    keypoint_pairs.factor_distance({}, a)


def test_validation_and_test_pairs_use_disjoint_chairs_and_the_datasets_keypoints(
    trained, pairs):
  splits = {p.split for p in pairs}
  assert splits == {keypoint_pairs.VALIDATION, keypoint_pairs.TEST}
  chairs = {s: {c for p in pairs if p.split == s for c in (p.style_a, p.style_b)}
            for s in splits}
  assert not chairs[keypoint_pairs.VALIDATION] & chairs[keypoint_pairs.TEST]
  # the shared view is a training view of every chair, so all 4 test-data chairs take part
  assert len(chairs[keypoint_pairs.VALIDATION] | chairs[keypoint_pairs.TEST]) == 4
  keypoint_pairs.check_splits(pairs)
  models = style_space.procedural_models(trained)
  for p in pairs:
    assert p.num_points >= 3 and len(p.names) == p.num_points
    assert p.distance == keypoint_pairs.factor_distance(models[p.style_a].factors,
                                                         models[p.style_b].factors)
    for style, points in ((p.style_a, p.points_a), (p.style_b, p.points_b)):
      [(xy, visible)] = trained.data.keypoints(
          trained.data.example_ids([style], p.azimuth, p.elevation))
      index = [models[style].keypoint_names.index(n) for n in p.names]
      np.testing.assert_array_equal(points, xy[index])
      assert visible[index].all()


def test_the_same_pair_in_validation_and_test_is_refused(pairs):
  test = next(p for p in pairs if p.split == keypoint_pairs.TEST)
  # read the other way round, it is still the same pair
  leak = dataclasses.replace(test, style_a=test.style_b, style_b=test.style_a,
                             split=keypoint_pairs.VALIDATION)
  with pytest.raises(ValueError, match="both validation and test"):
    keypoint_pairs.check_splits([test, leak])


def test_a_chair_morphed_into_itself_keeps_its_keypoints(trained, pairs):
  p = pairs[0]
  styles = sampling.morph_styles(trained.num_styles, p.style_a, p.style_a, 12)
  frames = trained.generate(styles, np.full(12, p.azimuth), np.full(12, p.elevation),
                            rng=jax.random.key(1)).composite
  flow = correspondence.morph_flow(frames, "dis")
  moved = correspondence.transfer_keypoints(p.points_a, flow)
  np.testing.assert_allclose(moved.points, p.points_a, atol=1.0)


def _write(path, record):
  path.write_text(json.dumps(record))
  return str(path)


def test_a_pair_file_round_trips_and_drives_the_evaluator(trained, pairs, tmp_path):
  record = keypoint_pairs.to_record(pairs, trained.style_names, trained.data.image_size)
  record["image_size"] = 2 * trained.data.image_size      # annotated at twice the size
  for entry in record["pairs"]:
    for field in ("points_a", "points_b"):
      entry[field] = (2 * np.asarray(entry[field])).tolist()
  path = _write(tmp_path / "pairs.json", record)
  back = keypoint_pairs.read_pairs(path, trained)
  assert [(p.style_a, p.style_b, p.split, p.difficulty) for p in back] == [
      (p.style_a, p.style_b, p.split, p.difficulty) for p in pairs]
  for p, q in zip(back, pairs):
    np.testing.assert_allclose(p.points_a, q.points_a, atol=1e-3)
    np.testing.assert_allclose(p.points_b, q.points_b, atol=1e-3)

  [ev] = evaluators.from_config({"table3": {"type": "correspondences", "pairs_file": path,
                                            **FAST}})
  result = ev.run(trained)
  n = int(result.metrics["num_test_keypoints"])
  assert n == sum(p.num_points for p in pairs if p.split == keypoint_pairs.TEST)
  assert result.metrics["oracle_all"] < 0.5 < result.metrics["identity_all"]
  for approach in ev.evaluator.approaches:
    assert np.isfinite(result.metrics[f"{approach}_all"])
    assert result.arrays[f"error_{approach}"].shape == (n,)
  assert set(result.images) == {"figure18", "morph_flow"}
  assert result.images["figure18"].ndim == 3
  record["pairs"][0]["points_b"][0][0] += 1.0       # an edited file is another input
  [again] = evaluators.from_config({"table3": {"type": "correspondences",
                                               "pairs_file": _write(tmp_path / "pairs.json",
                                                                    record), **FAST}})
  assert again.code != ev.code


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(format="other"), "not a pair file"),
    (lambda r: r["pairs"][1].update(a="no-such-chair"), r"pairs\[1\]: 'a' = 'no-such-chair'"),
    (lambda r: r["pairs"][0].update(points_b=[[1.0, 2.0]]), r"pairs\[0\]: 'points_a' has"),
    (lambda r: r["pairs"][1].update(points_a=[1.0, 2.0]), r"pairs\[1\]: 'points_a' must be"),
    (lambda r: r["pairs"][0].update(points_a=[[1e6, 2.0]] * len(r["pairs"][0]["points_a"])),
     r"pairs\[0\]: 'points_a' has points outside"),
    (lambda r: r["pairs"][0].update(difficulty="medium"), r"pairs\[0\]: 'difficulty'"),
    (lambda r: r["pairs"][0].update(split="train"), r"pairs\[0\]: 'split'"),
    (lambda r: r["pairs"][0].update(view=[33.3, 20.0]), r"pairs\[0\]: no stored image"),
    (lambda r: r["pairs"][0].update(b=r["pairs"][0]["a"]), r"pairs\[0\]: 'a' and 'b'"),
    (lambda r: [p.update(split="validation") for p in r["pairs"]], "no test pair"),
])
def test_a_malformed_pair_file_is_refused_naming_the_entry(trained, pairs, tmp_path, edit,
                                                           message):
  record = keypoint_pairs.to_record(pairs, trained.style_names, trained.data.image_size)
  edit(record)
  with pytest.raises(ValueError, match=message):
    keypoint_pairs.read_pairs(_write(tmp_path / "bad.json", record), trained)


def test_a_pair_file_that_is_not_json_or_missing_is_refused(trained, tmp_path):
  bad = tmp_path / "bad.json"
  bad.write_text("{not json")
  with pytest.raises(ValueError, match="not valid JSON"):
    keypoint_pairs.read_pairs(str(bad), trained)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    keypoint_pairs.read_pairs(str(tmp_path / "missing.json"), trained)
