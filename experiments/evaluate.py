r"""Runs evaluators on a trained run: `python -m experiments.evaluate --workdir=DIR`.

    --evals=a,b   names from the run's config.evals (default: all of them); a name that is
                  not there but is an evaluator type (e.g. `transformations`) runs that type
                  with its defaults
    --step=N      a checkpoint step (default: the latest)

Each evaluator writes DIR/eval/<name>/metrics.json and its PNGs (see chairgen/evaluators).
"""

from absl import app
from absl import flags

from chairgen import cli
from chairgen import evaluators
from chairgen import inference

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir (has run_info.json).")
_EVALS = flags.DEFINE_list("evals", [], "Evaluator names (default: all in the run's config).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  cli.start(argv)
  trained = inference.load(_WORKDIR.value, _STEP.value)
  configured = dict(trained.config.get("evals") or {})
  for name in _EVALS.value:
    if name not in configured and name in evaluators.known_types():
      configured[name] = {"type": name}
  for ev in evaluators.from_config(configured, _EVALS.value or None):
    result, _ = evaluators.evaluate(trained, ev, reuse=False)
    summary = ", ".join(f"{k} {v:.5g}" for k, v in result.metrics.items())
    cli.echo(f"step {trained.step} {ev.name} ({ev.type}): {summary}")
    cli.echo(f"  wrote {evaluators.eval_dir(trained.workdir, ev.name)}/")


if __name__ == "__main__":
  app.run(main)
