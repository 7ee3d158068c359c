"""tools/benchmark.py writes a complete JSON record; the torch reference is the same network."""

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.slow
def test_benchmark_writes_json(tmp_path):
  out = tmp_path / "bench.json"
  torch_flags = ["--torch_modes=eager"] if HAVE_TORCH else ["--skip_torch"]
  cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "--sizes=32x4",
         "--steps=2", "--rounds=2", "--warmup=0", "--dtypes=float32", "--nowith_augment",
         "--num_styles=7", "--extra_env=CHAIRGEN_FUSED_ADAM=0", "--extra=kernels=jax",
         "--peak_tflops=float32=0.5", f"--json={out}"] + torch_flags
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "images/s" in proc.stdout
  results = json.loads(out.read_text())

  assert results["machine"]["cpu_count"] == os.cpu_count() and results["complete"] is True
  (record,) = results["sizes"]
  assert (record["image_size"], record["batch_size"]) == (32, 4)
  expected = {"jax-float32", "jax-float32[CHAIRGEN_FUSED_ADAM=0]", "jax-float32[kernels=jax]"} | (
      {"torch-eager"} if HAVE_TORCH else set())
  assert set(record["contenders"]) == expected
  # The same work, counted the same way whichever kernels and Adam compute it (torch's: the
  # JAX step's): more than conv1's (16 px, 256 -> 256 channels, batch 4) multiply-adds x 2
  # FLOPs x 3 (forward, two gradients), less the 8 % that 'SAME' padding's borders skip.
  flops = {r["model_flops_per_step"] for r in record["contenders"].values()}
  assert len(flops) == 1 and flops.pop() > 0.9 * 3 * 2 * 4 * 16 * 16 * 256 * 256 * 9
  for name, r in record["contenders"].items():
    assert r["steps_timed"] == 2, name
    assert r["images_per_s"] == pytest.approx(4 / r["median_step_s"])
    assert r["images_per_s"] > 0 and r["compile_s"] >= 0
    assert r["memory"]["process_peak_rss_bytes"] > 2**20
    assert r["achieved_tflops"] == pytest.approx(r["model_flops_per_step"] / r["median_step_s"]
                                                 / 1e12)
    assert r["mfu"] == pytest.approx(r["achieved_tflops"] / 0.5)       # --peak_tflops
    assert r["paper_schedule_hours"] == pytest.approx(500_000 * 128 / r["images_per_s"] / 3600)
  assert record["contenders"]["jax-float32"]["memory"]["xla_buffers_bytes"] > 4 * 22_000_000
  if HAVE_TORCH:
    assert record["contenders"]["torch-eager"]["memory"]["parameters"] == record["jax_parameters"]
    assert set(record["ratios"]) == {"jax-float32 / torch-eager",
                                     "jax-float32[CHAIRGEN_FUSED_ADAM=0] / torch-eager",
                                     "jax-float32[kernels=jax] / torch-eager"}
  for key in ("pipeline", "augment"):
    assert results[key]["32"]["images_per_s"] > 0


def _tool(name):
  sys.path.insert(0, os.path.join(ROOT, "tools"))
  return importlib.import_module(name)


def test_peak_flops_by_device_kind_and_flag_and_schedule_durations():
  from absl import app  # pylint: disable=g-import-not-at-top
  benchmark = _tool("benchmark")
  assert benchmark.peak_tflops("NVIDIA H100 80GB HBM3", [])["bfloat16"] == 989.4
  assert benchmark.peak_tflops("NVIDIA H100 PCIe", [])["bfloat16"] == 756.0
  assert benchmark.peak_tflops("NVIDIA H200", [])["float32"] == 494.7
  assert benchmark.peak_tflops("cpu", []) == {}
  assert benchmark.peak_tflops("cpu", ["bfloat16=2.5"]) == {"bfloat16": 2.5}
  for bad in ("bfloat16", "float16=3", "float32=-1", "float32=fast"):
    with pytest.raises(app.UsageError, match="--peak_tflops"):
      benchmark.peak_tflops("cpu", [bad])
  assert benchmark.contender_dtype("jax-float32[dtype=bfloat16+kernels=xla]") == "bfloat16"
  assert benchmark.contender_dtype("torch-compile") == "float32"
  assert [benchmark.duration(s) for s in (3000, 7.5 * 3600, 18.2 * 86400)] == [
      "50 min", "7.5 h", "18.2 d"]
  assert benchmark.paper_schedule_images() == 500_000 * 128


@pytest.mark.skipif(not HAVE_TORCH, reason="torch (optional benchmark extra) not installed")
@pytest.mark.parametrize("image_size", [32, 64])
def test_torch_reference_matches_jax_model(image_size):
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(ROOT, "tools"))
  import torch_reference  # pylint: disable=g-import-not-at-top
  from chairgen import augment, models  # pylint: disable=g-import-not-at-top

  num_styles, batch = 5, 3
  model = models.create_model(models.default_config(), num_styles=num_styles,
                              image_size=image_size)
  keys = jax.random.split(jax.random.key(0), 4)
  style = jax.nn.one_hot(jax.numpy.arange(batch) % num_styles, num_styles)
  view = jax.random.normal(keys[0], (batch, 4))
  theta = 0.3 * jax.random.normal(keys[1], (batch, augment.THETA_DIM))
  variables = model.init({"params": keys[2], "sample": keys[3]}, style, view, theta)
  expected = model.apply(variables, style, view, theta)

  net, _ = torch_reference.create(torch_reference.Spec(num_styles, augment.THETA_DIM,
                                                       image_size))
  n_jax = sum(x.size for x in jax.tree.leaves(variables["params"]))
  assert torch_reference.num_parameters(net) == n_jax
  torch_reference.load_jax_params(net, variables["params"])
  as_torch = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
  with torch.no_grad():
    rgb, logits = net(as_torch(style), as_torch(view), as_torch(theta))
  np.testing.assert_allclose(rgb.permute(0, 2, 3, 1).numpy(), expected["rgb"], atol=2e-4)
  np.testing.assert_allclose(logits.permute(0, 2, 3, 1).numpy(), expected["mask_logits"],
                             atol=2e-4)

  # The same loss (eq. 1, NLL mask, λ = 100) as chairgen.losses on the same targets.
  from chairgen import losses, train  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (batch, image_size, image_size, 3), dtype=np.uint8)
  mask = rng.integers(0, 2, (batch, image_size, image_size, 1), dtype=np.uint8)
  target_image, target_mask = train.prepare_targets({"image": image, "mask": mask})
  want, _ = losses.compute(expected, target_image, target_mask, losses.default_config())
  got = torch_reference.loss_fn(rgb, logits, torch.from_numpy(image), torch.from_numpy(mask))
  assert float(got) == pytest.approx(float(want), rel=1e-5)


@pytest.mark.slow
def test_profile_step_reports_ops_by_layer_and_kind_and_times_the_products():
  tool = os.path.join(ROOT, "tools", "profile_step.py")
  proc = subprocess.run([sys.executable, tool, "--size=32", "--batch=4", "--top=5"],
                        capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert "op time per step" in out and "by layer:" in out and "by kind:" in out
  assert "conv1 bwd" in out and "YNNPACK fusion" in out
  proc = subprocess.run([sys.executable, tool, "--products", "--size=32", "--batch=4",
                         "--repeats=1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(("upconv", "conv"))]
  # 32 px: upconv1 (256 outputs, Winograd) and conv1; upconv2 (5 outputs) is not Winograd.
  assert [(r[0], r[-4]) for r in rows] == [("upconv1", "f32"), ("upconv1", "bf16"),
                                           ("conv1", "f32"), ("conv1", "bf16")], rows
  assert all(float(ms) > 0 for r in rows for ms in r[-3:])
  proc = subprocess.run([sys.executable, tool, "--adam", "--size=32", "--repeats=1"],
                        capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = re.findall(r"(fc5 kernel|all parameters) +native +(\d+\.\d{3}) +optax +(\d+\.\d{3})",
                    proc.stdout)
  assert [r[0] for r in rows] == ["fc5 kernel", "all parameters"], proc.stdout
  assert all(float(ms) > 0 for r in rows for ms in r[1:])


def test_benchmark_layers_times_both_winograd_tiles():
  tool = os.path.join(ROOT, "tools", "benchmark_layers.py")
  proc = subprocess.run([sys.executable, tool, "--kernels=", "--nogenerator", "--repeats=1",
                         "--winograd_tiles=2x8x4"], capture_output=True, text=True,
                        timeout=300, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row, = [line for line in proc.stdout.splitlines() if "8px" in line]
  pairs = re.findall(r"(F\(\dx\d\)) +(\d+\.\d{3}) / +(\d+\.\d{3})", row)
  assert [p[0] for p in pairs] == ["F(2x2)", "F(4x4)"], row
  assert all(float(ms) > 0 for p in pairs for ms in p[1:]), row


def test_benchmark_rejects_switches_it_cannot_apply_per_contender():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "benchmark.py"),
                         "--sizes=32x4", "--skip_torch", "--extra_env=CHAIRGEN_ONEDNN=0"],
                        capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert proc.returncode != 0
  assert "read once per process" in proc.stderr, proc.stderr[-2000:]


def test_benchmark_layers_compares_onednn_with_the_jax_forms():
  tool = os.path.join(ROOT, "tools", "benchmark_layers.py")
  proc = subprocess.run([sys.executable, tool, "--kernels=auto,auto-jax", "--batch=2",
                         "--image_size=32", "--width_multiplier=0.125", "--repeats=1",
                         "--dtype=bfloat16"], capture_output=True, text=True, timeout=600,
                        cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [line for line in proc.stdout.splitlines()
          if re.match(r"(upconv|conv|\w*fc)\d", line.strip())]
  assert {"upconv1", "conv1", "fc5", "style_fc1"} <= {row.split()[0] for row in rows}, proc.stdout
  for row in rows:
    pairs = re.findall(r"(auto(?:-jax)?) +(\d+\.\d{3}) / +(\d+\.\d{3})", row)
    assert [p[0] for p in pairs] == ["auto", "auto-jax"], row
    # Microsecond resolution: even a 64x64 layer at batch 2 costs a dispatch (some µs), so a
    # zero here means the layer was not timed (a 0.1 ms resolution printed 0.0 on a fast CPU).
    assert all(float(ms) > 0 for p in pairs for ms in p[1:]), row
  generator = [line.split() for line in proc.stdout.splitlines() if "gradient" in line
               and line.split()[0] in ("auto", "auto-jax")]
  assert [g[0] for g in generator] == ["auto", "auto-jax"], proc.stdout


def test_profile_step_counts_only_device_kernels_on_an_accelerator(tmp_path):
  """A GPU trace has the host's events (launches, waits) and the device's kernels, several per
  HLO op: the op times are the device's, by HLO op; a CPU trace's are all its events."""
  import gzip  # pylint: disable=g-import-not-at-top
  profile_step = _tool("profile_step")
  def write(events):
    folder = tmp_path / f"t{len(list(tmp_path.iterdir()))}" / "plugins" / "profile" / "run"
    folder.mkdir(parents=True)
    with gzip.open(folder / "host.trace.json.gz", "wt") as f:
      json.dump({"traceEvents": events}, f)
    return str(folder.parents[2])
  meta = lambda pid, name: {"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}}
  gpu = write([meta(1, "/host:CPU"), meta(2, "/device:GPU:0"),
               {"ph": "X", "pid": 1, "name": "fusion.3", "dur": 900.0,
                "args": {"hlo_op": "fusion.3"}},
               {"ph": "X", "pid": 2, "name": "sm90_xmma_fprop", "dur": 300.0,
                "args": {"hlo_op": "cudnn-conv.1"}},
               {"ph": "X", "pid": 2, "name": "sm90_xmma_fprop_split", "dur": 100.0,
                "args": {"hlo_op": "cudnn-conv.1"}},
               {"ph": "X", "pid": 2, "name": "loop_fusion", "dur": 50.0}])
  assert profile_step.op_times(gpu, steps=2) == {"cudnn-conv.1": 0.2, "loop_fusion": 0.025}
  cpu = write([meta(1, "/host:CPU"), {"ph": "X", "pid": 1, "name": "ynn_fusion", "dur": 800.0},
               {"ph": "B", "pid": 1, "name": "ynn_fusion"}])
  assert profile_step.op_times(cpu, steps=2) == {"ynn_fusion": 0.4}
  line = '%cudnn-conv.1 = (f32[1]) custom-call(), custom_call_target="__cudnn$convForward"'
  assert profile_step.classify(line)[1] == "cuDNN convolution"


@pytest.mark.slow
def test_gpu_script_writes_every_part(tmp_path):
  """tools/benchmark_gpu.sh (GPU machines get minutes: its flags must work before one is lent),
  run small on the CPU."""
  env = dict(os.environ, SIZES="32x4", PROFILE="32x4",
             BENCHMARK_ARGS="--steps=2 --rounds=1 --warmup=0 --nowith_augment --nopipeline "
                            "--noaugment --dtypes=float32 --extra=kernels=jax --peak_tflops=float32=1")
  proc = subprocess.run(["bash", os.path.join(ROOT, "tools", "benchmark_gpu.sh"), str(tmp_path),
                         sys.executable], capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
  (record,) = json.loads((tmp_path / "benchmark_gpu.json").read_text())["sizes"]
  assert set(record["contenders"]) == {"jax-float32", "jax-float32[kernels=jax]"}
  assert all(r["mfu"] > 0 for r in record["contenders"].values())
  assert "MFU" in (tmp_path / "benchmark.log").read_text()
  layers = (tmp_path / "layers_32_bf16.txt").read_text()
  assert re.search(r"upconv1 .* xla +\d+\.\d{3} / +\d+\.\d{3} +jax +\d", layers), layers
  assert "by kind:" in (tmp_path / "profile_32_bf16.txt").read_text()
  assert (tmp_path / "profile_32_bf16.json.gz").stat().st_size > 0

