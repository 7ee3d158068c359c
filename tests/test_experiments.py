"""The paper-section experiments end to end at the `test` scale, shared runs, reports."""

import json
import math
import os
import subprocess
import sys

import pytest

from chairgen import experiment
from chairgen import reports
from chairgen import runs
from experiments.configs import architectures as architectures_config
from experiments.configs import correspondences as correspondences_config
from experiments.configs import dataset_size as dataset_size_config
from experiments.configs import elevation_transfer as elevation_transfer_config
from experiments.configs import feature_arithmetic as feature_arithmetic_config
from experiments.configs import network_analysis as network_analysis_config
from experiments.configs import random_generation as random_generation_config
from experiments.configs import runs as catalogue
from experiments.configs import style_interpolation as style_interpolation_config
from experiments.configs import transformations as transformations_config
from experiments.configs import view_interpolation as view_interpolation_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = ("architectures", "dataset_size", "transformations", "view_interpolation",
               "elevation_transfer", "style_interpolation", "feature_arithmetic",
               "random_generation", "correspondences", "network_analysis")
CONFIGS = {"architectures": architectures_config, "dataset_size": dataset_size_config,
           "transformations": transformations_config,
           "view_interpolation": view_interpolation_config,
           "elevation_transfer": elevation_transfer_config,
           "style_interpolation": style_interpolation_config,
           "feature_arithmetic": feature_arithmetic_config,
           "random_generation": random_generation_config,
           "correspondences": correspondences_config,
           "network_analysis": network_analysis_config}


@pytest.fixture(scope="module")
def sections(tmp_path_factory, session_data_dir, run_section):
  """Every experiment at the test scale, sharing one runs_dir: {name: (out_dir, stdout)}."""
  root = tmp_path_factory.mktemp("experiments")
  done = {}
  for name in EXPERIMENTS:
    out = str(root / "reports" / name)
    result = run_section(name, root / "runs", out, session_data_dir)
    assert result.returncode == 0, f"{name}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    done[name] = (out, result.stdout)
  return root, done


def _numbers(x):
  if isinstance(x, dict):
    for v in x.values():
      yield from _numbers(v)
  elif isinstance(x, list):
    for v in x:
      yield from _numbers(v)
  elif isinstance(x, float):
    yield x


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_writes_a_complete_report_with_finite_numbers(sections, name):
  _, done = sections
  out, stdout = done[name]
  with open(os.path.join(out, "report.json")) as f:
    report = json.load(f)
  assert report["scale"] == "test" and report["runs"] and report["tables"]
  config = CONFIGS[name].get_config("test")
  assert set(report["runs"]) == set(config.runs.keys())
  for record in report["runs"].values():
    assert record["step"] == 4 and record["seed"] in (0, 1)
  for table in report["tables"]:
    for row in table["rows"]:
      if row["ours"] is None:   # only the paper's numbers of methods that were not run
        assert "(published, not run)" in row["label"] and row["paper"] is not None
        continue
      assert all(math.isfinite(v) for v in row["ours"]["values"])
  assert all(math.isfinite(v) for v in _numbers(report["tables"]))
  for claim in report["claims"]:
    assert claim["verdict"] in (reports.HOLDS, reports.WITHIN_NOISE, reports.DOES_NOT_HOLD)
  for figure in report["figures"]:
    assert os.path.getsize(os.path.join(out, figure["path"])) > 100
  assert os.path.exists(os.path.join(out, "report.md"))
  assert f"[{name} 1/{len(config.runs)}]" in stdout
  for run in config.runs.keys():   # trained here, or by an earlier section and reused
    assert (f"test/{run}: training steps 0..4" in stdout
            or f"test/{run}: finished (step 4), reusing" in stdout), run


@pytest.mark.slow
def test_rerun_reuses_runs_and_stored_evaluations(sections, session_data_dir, tmp_path,
                                                  run_section):
  root, _ = sections
  result = run_section("architectures", root / "runs", tmp_path / "again", session_data_dir,
                       "--notrain")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "training steps" not in result.stdout
  assert result.stdout.count("stored result") == 15  # 5 runs x 3 evaluators
  with open(tmp_path / "again" / "report.json") as f, \
       open(os.path.join(sections[1]["architectures"][0], "report.json")) as g:
    assert json.load(f)["tables"] == json.load(g)["tables"]


@pytest.mark.slow
def test_notrain_names_the_missing_run(session_data_dir, tmp_path, run_section):
  result = run_section("transformations", tmp_path / "runs", tmp_path / "out", session_data_dir,
                       "--notrain")
  assert result.returncode != 0
  assert "chairs_1s-S-deep_aug_seed0 is missing" in result.stderr and "--train" in result.stderr
  assert not os.path.exists(tmp_path / "out" / "report.json")


@pytest.mark.slow
def test_make_reproduction_gathers_reports(sections, tmp_path):
  _, done = sections
  reports_dir = tmp_path / "reproduction"
  for name, (out, _) in done.items():  # pretend they were tiny runs, to be gathered
    with open(os.path.join(out, "report.json")) as f:
      report = json.load(f)
    report["scale"] = "tiny"
    (reports_dir / f"{name}_tiny").mkdir(parents=True)
    (reports_dir / f"{name}_tiny" / "report.json").write_text(json.dumps(report))
  out = tmp_path / "reproduction.md"
  result = subprocess.run([sys.executable, "tools/make_reproduction.py",
                           f"--reports={reports_dir}", f"--out={out}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  text = out.read_text()
  for heading in ("Section 4.2", "Section 4.3", "Section 5.1", "Section 5.2", "Section 5.3",
                  "Table 1", "Table 2", "2.9", "Figure 9", "Figure 10", "ours, `tiny`",
                  "architectures_tiny/figure4.png", "view_interpolation_tiny/figure9.png",
                  "Section 5.4", "Section 5.5", "Section 5.6", "Figure 16", "Figure 17",
                  "random_generation_tiny/figure17.png", "Section 5.7", "Table 3",
                  "correspondences_tiny/figure18.png", "Section 6", "Figure 22",
                  "network_analysis_tiny/figure25.png"):
    assert heading in text
  order = [text.index(f"Section {s}") for s in ("4.2", "4.3", "5.1", "5.2", "5.3", "5.4", "5.5",
                                                  "5.6", "5.7", "6:")]
  assert order == sorted(order)


def test_the_same_run_is_shared_and_another_config_under_its_name_is_refused(tmp_path):
  name, config = catalogue.chairs_architecture("test", "1s-S-deep", 0)
  again_name, again = catalogue.chairs_architecture("test", "1s-S-deep", 0)
  assert name == again_name and runs.identity(config) == runs.identity(again)
  tweaked = again.copy_and_resolve_references()
  tweaked.train.progress_bar = True      # does not change what is learnt
  tweaked.model.kernels = "xla"          # the same function, computed differently
  assert runs.differences(config, tweaked) == []
  tweaked.optimizer.learning_rate = 1e-3
  assert runs.differences(config, tweaked) == ["optimizer.learning_rate: 0.0005 != 0.001"]
  workdir = runs.workdir_of(str(tmp_path), "test", name)
  os.makedirs(workdir)
  with open(os.path.join(workdir, "run_info.json"), "w") as f:
    json.dump({"config": json.loads(config.to_json_best_effort())}, f)
  with pytest.raises(ValueError, match="trained with another config .optimizer.learning_rate"):
    runs.status(str(tmp_path), "test", name, tweaked)
  assert runs.status(str(tmp_path), "test", name, config).step is None


def test_a_run_stored_before_a_field_existed_matches_that_fields_default():
  _, config = catalogue.chairs_architecture("test", "1s-S-deep", 0)
  older = json.loads(config.to_json_best_effort())
  del older["data"]["elevation_classes"]          # a field added later, default None
  assert runs.differences(older, config) == []
  config.data.elevation_classes = ("chair",)
  assert runs.differences(older, config) == ["data.elevation_classes: None != ['chair']"]


def test_experiment_configs_name_known_runs_and_evaluators():
  for module in CONFIGS.values():
    for scale in experiment.SCALES:
      config = module.get_config(scale)
      experiment.check_config(config)
      for run in config.runs.keys():
        experiment.evaluators_for(config, run)
  long_vae = random_generation_config.get_config("tiny,long_vae")   # a variant: longer VAEs
  assert long_vae.name == "random_generation_long_vae"
  assert {long_vae.runs[r].optimizer.num_steps for r in long_vae.runs.keys() if "vae" in r} == {
      3 * catalogue.TINY.chairs_steps}
  with pytest.raises(ValueError, match="variant of the CPU scales"):
    random_generation_config.get_config("paper,long_vae")
  long_net = network_analysis_config.get_config("tiny,long")   # section 6's net, 3x longer
  assert list(long_net.runs.keys()) == ["chairs_2s-E_aug_x3_seed0"]
  assert long_net.runs["chairs_2s-E_aug_x3_seed0"].optimizer.num_steps == \
      3 * catalogue.TINY.augmented_steps
  with pytest.raises(ValueError, match="variant of the CPU scales"):
    network_analysis_config.get_config("paper,long")
  real = correspondences_config.get_config("paper,real")   # real chairs, the user's pair file
  assert list(real.runs.keys()) == ["chairs_1s-S-deep_real_seed0"]
  assert real.runs["chairs_1s-S-deep_real_seed0"].data.name == "aubry_chairs/128"
  config = architectures_config.get_config("test")
  config.evals.figure4.runs = ["no_such_run"]
  with pytest.raises(ValueError, match=r"unknown run\(s\) \['no_such_run'\]"):
    experiment.check_config(config)
  config = architectures_config.get_config("test")
  config.evals.extra = {"type": "reconstrction"}
  with pytest.raises(ValueError, match="unknown evaluator type 'reconstrction'"):
    experiment.run_experiment(config, "/nonexistent")


def test_verdicts():
  a, b = reports.Stat.of([1.0, 1.1]), reports.Stat.of([2.0, 2.1])
  assert reports.verdict_less(a, b) == reports.HOLDS
  assert reports.verdict_less(b, a) == reports.DOES_NOT_HOLD
  assert reports.verdict_less(reports.Stat.of([1.0, 2.0]), reports.Stat.of([1.6, 2.2])) == \
      reports.WITHIN_NOISE
  assert reports.verdict_less(reports.Stat.of([1.0]), reports.Stat.of([2.0])) == \
      reports.WITHIN_NOISE  # one seed: no spread, no stronger claim
  assert reports.verdict_increasing([a, b, reports.Stat.of([3.0, 3.1])]) == reports.HOLDS
  assert reports.verdict_increasing([a, b, reports.Stat.of([1.5, 1.6])]) == \
      reports.DOES_NOT_HOLD
  assert reports.Stat.of([1.0, 3.0]).format() == "2 ± 1.4 (n=2)"
