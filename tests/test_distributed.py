"""Multi-process runs: 2 processes on this machine (`jax.distributed` on localhost, CPU devices,
gloo collectives), started through the README's train command with `--distributed` flags.

One run of N steps is interrupted by a SIGTERM to process 1 only, then resumed to N; a
1-process run with 2 host devices (the same mesh, the same global batch) is the reference:
its checkpoints must equal the 2-process run's bit for bit, at the step both processes
stopped and at the end.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from chairgen import checkpoints
from chairgen import inference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 16
pytestmark = pytest.mark.slow


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(**extra) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  env.update(extra)
  return env


def _train_args(workdir, data_dir, *extra):
  """The README's train command (test preset), with overrides for a short run."""
  return [sys.executable, "-m", "experiments.train",
          "--config=experiments/configs/default.py:test", f"--workdir={workdir}",
          f"--config.data.data_dir={data_dir}", f"--config.optimizer.num_steps={NUM_STEPS}",
          "--config.train.log_every=1", "--config.train.eval_every=8", *extra]


def _start(args, num_processes, tmp_path, tag, **env):
  """Starts `args` as processes 0..n-1 of one run; returns (processes, log paths)."""
  port = _free_port()
  procs, logs = [], []
  for i in range(num_processes):
    log = tmp_path / f"{tag}_process{i}.log"
    flags = [] if num_processes == 1 else [
        "--distributed", f"--coordinator_address=localhost:{port}",
        f"--num_processes={num_processes}", f"--process_id={i}"]
    with open(log, "w") as f:
      procs.append(subprocess.Popen(args + flags, cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                                    env=_env(**env)))
    logs.append(log)
  return procs, logs


def _wait(procs, logs, timeout=600):
  deadline = time.time() + timeout
  for p in procs:
    try:
      p.wait(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      pytest.fail("processes did not finish:\n" + "\n".join(l.read_text()[-3000:] for l in logs))
  texts = [l.read_text() for l in logs]
  assert [p.returncode for p in procs] == [0] * len(procs), "\n".join(t[-4000:] for t in texts)
  return texts


def _params(workdir, step):
  return jax.tree.leaves(inference.load(workdir, step).params)


def _assert_equal_params(a, b, what):
  assert len(a) == len(b)
  assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)), what


def test_two_processes_train_evaluate_stop_together_and_resume_exactly(tmp_path,
                                                                       session_data_dir):
  two = tmp_path / "two_processes"
  # Reference: 1 process, 2 host devices, a checkpoint after every step.
  reference = tmp_path / "one_process"
  ref_procs, ref_logs = _start(_train_args(reference, session_data_dir,
                                           "--config.train.checkpoint_every=1",
                                           f"--config.train.max_checkpoints_to_keep={NUM_STEPS}"),
                               1, tmp_path, "reference",
                               XLA_FLAGS="--xla_force_host_platform_device_count=2")
  _wait(ref_procs, ref_logs)  # (one run after the other: this machine has two cores)

  procs, logs = _start(_train_args(two, session_data_dir), 2, tmp_path, "interrupted")
  metrics = two / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and procs[1].poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
      break
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)  # process 1 only: the preemption notice reaches both
  texts = _wait(procs, logs)
  stopped = []
  for i, text in enumerate(texts):
    lines = [l for l in text.splitlines() if l.startswith("SIGTERM")]
    assert len(lines) == 1, f"process {i}:\n{text[-3000:]}"
    assert f"(process {i} of 2)" in lines[0]
    stopped.append(int(lines[0].split("step ")[1].split(";")[0]))
  assert stopped[0] == stopped[1] < NUM_STEPS, stopped
  step = stopped[0]
  assert inference.available_steps(two)[-1] == step
  _assert_equal_params(_params(two, step), _params(reference, step),
                       f"2 processes at step {step} != 1 process with 2 devices")

  texts = _wait(*_start(_train_args(two, session_data_dir), 2, tmp_path, "resumed"))
  assert f"Resuming from step {step}" in texts[0]
  assert "Resuming" not in texts[1]  # only process 0 prints
  assert inference.available_steps(two)[-1] == NUM_STEPS
  _assert_equal_params(_params(two, NUM_STEPS), _params(reference, NUM_STEPS),
                       "resumed 2-process run != uninterrupted 1-process run")
  assert (two / "samples" / "latest.png").exists()
  assert not list(two.glob(f"{checkpoints.CHECKPOINT_DIR}/*/*.tmp"))

  # Its evaluation at the last step (on 2 processes, written by process 0) equals the reference's.
  got = json.loads((two / "eval" / "heldout" / "metrics.json").read_text())
  want = json.loads((reference / "eval" / "heldout" / "metrics.json").read_text())
  assert got["step"] == want["step"] == NUM_STEPS
  assert got["metrics"] == want["metrics"]

  # The sampling entry point on 2 processes: its four figures, announced once.
  texts = _wait(*_start([sys.executable, "-m", "experiments.sample", f"--workdir={two}",
                         f"--out_dir={tmp_path / 'samples'}"], 2, tmp_path, "sample"))
  assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
      "elevation.png", "morph.png", "rotation.png", "transformations.png"]
  assert texts[0].count("wrote") == 4 and "wrote" not in texts[1]


def test_distributed_flags_must_come_together(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "experiments.train", f"--workdir={tmp_path}", "--distributed",
       "--num_processes=2"], cwd=REPO, capture_output=True, text=True, env=_env(), timeout=120)
  assert result.returncode != 0
  assert "missing: --coordinator_address, --process_id" in result.stderr
  result = subprocess.run(
      [sys.executable, "-m", "experiments.train", f"--workdir={tmp_path}", "--process_id=1"],
      cwd=REPO, capture_output=True, text=True, env=_env(), timeout=120)
  assert result.returncode != 0 and "add --distributed" in result.stderr
