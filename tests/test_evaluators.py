"""Evaluators: configured by name, deterministic, stored and reused, and their metrics' meaning."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from chairgen import evaluators
from chairgen import inference
from chairgen.evaluators import _common
from chairgen.evaluators import morph
from chairgen.evaluators import transformations

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def trained(trained_run):
  return inference.load(trained_run)


def test_from_config_names_unknown_types_names_and_fields():
  with pytest.raises(ValueError, match="unknown evaluator type 'nope'"):
    evaluators.from_config({"a": {"type": "nope"}})
  with pytest.raises(ValueError, match=r"unknown evaluator name\(s\) \['b'\]"):
    evaluators.from_config({"a": {"type": "reconstruction"}}, only=["b"])
  with pytest.raises(ValueError, match="config.evals.a .reconstruction.*unexpected keyword"):
    evaluators.from_config({"a": {"type": "reconstruction", "spilt": "train"}})
  with pytest.raises(ValueError, match="split must be one of"):
    evaluators.from_config({"a": {"type": "reconstruction", "split": "val"}})
  assert {"reconstruction", "views", "morph", "transformations"} <= set(evaluators.known_types())


def test_image_mse_is_the_mean_over_pixels_and_channels():
  a = np.zeros((2, 4, 4, 3))
  b = np.zeros((2, 4, 4, 3))
  b[0, 0, 0, 0] = 1.0
  np.testing.assert_allclose(_common.image_mse(a, b), [1 / 48, 0.0])
  # Ground truth on white: object pixels keep their colour, background turns white.
  image = np.full((1, 2, 2, 3), 51, np.uint8)
  mask = np.array([1, 0, 0, 1], np.uint8).reshape(1, 2, 2, 1)
  truth = _common.ground_truth_on_white(image, mask)
  np.testing.assert_allclose(truth[0, 0, 0], 0.2, atol=1e-6)
  np.testing.assert_allclose(truth[0, 0, 1], 1.0)


def test_morph_statistics_tell_even_steps_from_a_jump():
  frames = np.linspace(0, 1, 9)[:, None, None, None] * np.ones((9, 2, 2, 3))
  even = morph.step_statistics(morph.step_differences(frames))
  assert even["step_cv"] < 1e-9 and abs(even["max_step_ratio"] - 1) < 1e-9
  jump = np.concatenate([np.zeros((4, 2, 2, 3)), np.ones((5, 2, 2, 3))])
  snap = morph.step_statistics(morph.step_differences(jump))
  assert abs(snap["max_step_ratio"] - 8) < 1e-9 and snap["step_cv"] > 2


def test_transformation_row_errors():
  err = np.zeros((2, 7, 5))
  zoom = 2
  err[:, zoom, :2] = 4.0  # zoom-out columns
  err[:, zoom, 3:] = 2.0  # zoom-in columns
  err[:, :, 2] = 1.0      # identity
  rows = transformations.row_errors(err)
  np.testing.assert_allclose(rows["zoom_out"], 4.0)
  np.testing.assert_allclose(rows["zoom_in"], 2.0)
  np.testing.assert_allclose(rows["zoom"], 3.0)
  np.testing.assert_allclose(rows["identity"], 1.0)
  np.testing.assert_allclose(rows["translation"], 0.0)


def test_reconstruction_is_deterministic_stored_and_reused(trained, tmp_path):
  ev, = evaluators.from_config({"recon": {"type": "reconstruction", "split": "train",
                                          "max_examples": 20}})
  workdir = str(tmp_path)
  first, reused = evaluators.evaluate(trained, ev, workdir=workdir)
  assert not reused and 0.0 < first.metrics["mse"] < 1.0
  assert first.metrics["num_examples"] == 20 and len(first.arrays["mse"]) == 20
  np.testing.assert_allclose(first.metrics["mse"], first.arrays["mse"].mean())
  with open(os.path.join(workdir, "eval", "recon", "metrics.json")) as f:
    record = json.load(f)
  assert record["step"] == trained.step and record["config"]["split"] == "train"
  assert os.path.exists(os.path.join(workdir, "eval", "recon", "samples.png"))
  stored, reused = evaluators.evaluate(trained, ev, workdir=workdir)
  assert reused and stored.metrics == first.metrics
  np.testing.assert_array_equal(stored.arrays["ids"], first.arrays["ids"])
  again = ev.run(trained)
  assert again.metrics == first.metrics
  # Another config is not served from the store.
  other, = evaluators.from_config({"recon": {"type": "reconstruction", "split": "train",
                                             "max_examples": 10}})
  result, reused = evaluators.evaluate(trained, other, workdir=workdir)
  assert not reused and result.metrics["num_examples"] == 10


def test_views_morph_and_transformations_on_a_trained_run(trained, tmp_path):
  evals = evaluators.from_config({
      "views": {"type": "views", "views": [[0, 30, 20], [1, 120, 10], [0, 7, 3]]},
      "morph": {"type": "morph", "pairs": [[0, 1]], "num_frames": 8},
      "sheet": {"type": "transformations", "styles": [0], "num_columns": 5},
  })
  results = {ev.name: evaluators.evaluate(trained, ev, workdir=str(tmp_path))[0]
             for ev in evals}
  views = results["views"]
  assert views.arrays["generated"].shape == (3, 32, 32, 3)
  np.testing.assert_array_equal(views.arrays["has_truth"], [True, True, False])  # (7°, 3°)
  assert np.isfinite(views.metrics["mse"])
  assert results["morph"].arrays["frames"].shape == (1, 8, 32, 32, 3)
  assert results["morph"].metrics["max_step_ratio"] >= 1.0
  sheet = results["sheet"]
  assert sheet.arrays["generated"].shape == (1, 7, 5, 32, 32, 3)
  assert {"mse_identity", "mse_zoom_out", "mse_translation", "response_hue"} <= set(sheet.metrics)
  assert 0.0 <= sheet.metrics["response_zoom_out"] < 100.0
  assert all(np.isfinite(v) for v in sheet.metrics.values())
  for name in ("views/views.png", "morph/morph.png", "sheet/sheet.png", "sheet/sheet_truth.png"):
    assert os.path.exists(os.path.join(tmp_path, "eval", name))


def test_evaluate_command(trained_run):
  run = lambda *args: subprocess.run(
      [sys.executable, "-m", "experiments.evaluate", f"--workdir={trained_run}", *args],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  result = run("--evals=heldout,morph", "--step=1")
  assert result.returncode != 0 and "pairs must be" in result.stderr  # morph needs pairs
  result = run("--evals=heldout", "--step=1")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "step 1 heldout (reconstruction): mse" in result.stdout
  with open(os.path.join(trained_run, "eval", "heldout", "metrics.json")) as f:
    assert json.load(f)["step"] == 1
  result = run("--evals=bogus")
  assert result.returncode != 0 and "unknown evaluator name(s) ['bogus']" in result.stderr
  result = run("--step=99")
  assert result.returncode != 0 and "no checkpoint at step 99" in result.stderr


def test_responses_measure_how_much_of_the_true_change_is_drawn():
  truth = np.zeros((1, 7, 5, 2, 2, 3))
  truth[:, :, [0, 1, 3, 4]] = 1.0                # every transformation changes the image
  half = truth * 0.5                             # a net that draws half of the change...
  ratio = transformations.responses(transformations.changes(half),
                                    transformations.changes(truth))
  np.testing.assert_allclose(ratio["translation"], 0.25)   # ... has a quarter of its MSE
  ignores = transformations.responses(transformations.changes(np.zeros_like(truth)),
                                      transformations.changes(truth))
  assert ignores["hue"] == 0.0 and "identity" not in ignores
