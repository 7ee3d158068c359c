"""Sampling from a trained workdir: strips, morphs, the transformation sheet, and bad input."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from chairgen import inference
from chairgen import sampling

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(trained_run):
  return trained_run


def test_mix_and_morph_styles():
  np.testing.assert_allclose(sampling.mix_styles(4, [1, 3], [1, 3]), [0, 0.25, 0, 0.75])
  morph = sampling.morph_styles(3, 0, 2, 5)
  np.testing.assert_allclose(morph[0], [1, 0, 0])
  np.testing.assert_allclose(morph[-1], [0, 0, 1])
  np.testing.assert_allclose(morph[2], [0.5, 0, 0.5])
  np.testing.assert_allclose(morph.sum(axis=1), 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match="non-negative"):
    sampling.mix_styles(3, [0], [0.0])


@pytest.mark.slow
def test_load_trained_generates_composited_images(workdir):
  trained = inference.load(workdir)
  assert trained.step == 2
  size = trained.image_size
  strip = sampling.rotation_strip(trained, 0, num=4)
  assert strip.shape == (4, size, size, 3) and 0 <= strip.min() and strip.max() <= 1
  sheet = sampling.transformation_sheet(trained, 0, num_columns=5)
  assert sheet.shape[1:] == (5, size, size, 3) and sheet.shape[0] >= 7
  # Different styles (or views) give different images: the inputs reach the output.
  a = trained.generate(trained.one_hot([0, 1]), [30.0, 30.0], [20.0, 20.0])
  assert not np.allclose(a.rgb[0], a.rgb[1])
  with pytest.raises(ValueError, match="style must have shape"):
    trained.generate(np.ones((2, trained.num_styles + 1)), [0, 0], [0, 0])
  with pytest.raises(ValueError, match=r"style ids must be in \[0, "):
    trained.one_hot([trained.num_styles])


@pytest.mark.slow
def test_sample_command_writes_the_four_figures(workdir, tmp_path):
  out = tmp_path / "figs"
  result = subprocess.run(
      [sys.executable, "-m", "experiments.sample", f"--workdir={workdir}", f"--out_dir={out}",
       "--num=4"], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("rotation", "elevation", "morph", "transformations"):
    with Image.open(out / f"{name}.png") as im:
      assert im.size[0] > im.size[1] or name == "transformations"


def test_load_trained_names_the_problem_for_a_wrong_workdir(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a chairgen training workdir"):
    inference.load(str(tmp_path))
