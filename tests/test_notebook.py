"""The Colab notebook, executed top to bottom on the CPU (so that it cannot rot)."""

import os
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "chairgen_colab.ipynb")


def test_notebook_source_has_no_outputs():
  nbformat = pytest.importorskip("nbformat")
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == "code"]
  assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, session_data_dir, monkeypatch):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  # Shrink the training to seconds: the test preset, 4 steps, the session's dataset.
  monkeypatch.setenv("CHAIRGEN_CHECKOUT", REPO)
  monkeypatch.setenv("CHAIRGEN_NOTEBOOK_PRESET", "test")
  monkeypatch.setenv("CHAIRGEN_NOTEBOOK_STEPS", "4")
  monkeypatch.setenv("CHAIRGEN_NOTEBOOK_DATA_DIR", session_data_dir)
  monkeypatch.setenv("CHAIRGEN_NOTEBOOK_WORKDIR", os.fspath(tmp_path / "run"))
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  started = time.perf_counter()
  nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": os.fspath(tmp_path)}}).execute()
  print(f"notebook executed in {time.perf_counter() - started:.0f} s")
  outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "trained to step 4" in text
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(images) >= 5  # curve, held-out views, rotation, morph, transformation sheet
  widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
  assert widgets, "the explorer widget was not displayed"
  assert (tmp_path / "run" / "checkpoints").is_dir()
