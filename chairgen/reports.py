"""Experiment reports: `report.json` (every number and what it came from) and `report.md`.

A table is rows of (label, paper's value, ours as a `Stat` over seeds, extra columns), so the
section's markdown and the gathered `docs/reproduction.md` (tools/make_reproduction.py) come
from the same data. Claims carry a verdict computed from the numbers, never typed in.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import tempfile
from typing import Any, Sequence

import numpy as np

from chairgen import distributed

HOLDS, WITHIN_NOISE, DOES_NOT_HOLD = "holds", "holds within noise", "does not hold"


@dataclasses.dataclass
class Stat:
  """Mean and sample standard deviation of one number over n runs (seeds)."""
  mean: float
  std: float | None
  n: int
  values: list[float]

  @classmethod
  def of(cls, values: Sequence[float]) -> "Stat":
    values = [float(v) for v in values]
    if not values:
      raise ValueError("a Stat needs at least one value")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return cls(float(np.mean(values)), std, len(values), values)

  def format(self, scale: float = 1.0, digits: int = 3) -> str:
    text = f"{self.mean * scale:.{digits}g}"
    if self.std is not None:
      text += f" ± {self.std * scale:.{max(1, digits - 1)}g}"
    return text + (f" (n={self.n})" if self.n > 1 else "")


@dataclasses.dataclass
class Row:
  label: str
  paper: float | None
  ours: Stat | None
  extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Table:
  key: str                    # e.g. "table1"; tables with one key merge across scales
  title: str
  unit: str = ""              # e.g. "×10⁻³": values are multiplied by `scale` for display
  scale: float = 1.0
  rows: list[Row] = dataclasses.field(default_factory=list)
  extra_columns: list[str] = dataclasses.field(default_factory=list)
  note: str = ""


@dataclasses.dataclass
class Figure:
  key: str       # e.g. "figure4"
  title: str
  path: str      # relative to the report's directory
  caption: str = ""


@dataclasses.dataclass
class Claim:
  text: str
  verdict: str   # HOLDS | WITHIN_NOISE | DOES_NOT_HOLD
  evidence: str


@dataclasses.dataclass
class Report:
  name: str                  # the experiment (entry point) name
  section: str               # the paper's section(s)
  title: str
  scale: str
  command: str
  machine: dict[str, Any]
  date: str
  wall_seconds: float
  runs: dict[str, dict[str, Any]]
  tables: list[Table] = dataclasses.field(default_factory=list)
  figures: list[Figure] = dataclasses.field(default_factory=list)
  claims: list[Claim] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------- verdicts

def _interval(s: Stat) -> tuple[float, float]:
  spread = s.std or 0.0
  return s.mean - spread, s.mean + spread


def verdict_less(a: Stat, b: Stat) -> str:
  """Is a < b? HOLDS when the means ± one std are apart, WITHIN_NOISE when only the means are."""
  if a.mean >= b.mean:
    return DOES_NOT_HOLD
  if a.std is None or b.std is None or _interval(a)[1] >= _interval(b)[0]:
    return WITHIN_NOISE
  return HOLDS


def verdict_less_paired(a_values: Sequence[float], b_values: Sequence[float]
                        ) -> tuple[str, Stat]:
  """Is a < b, item by item (e.g. two rows of one chair)? (verdict, Stat of b - a).

  HOLDS when the mean difference exceeds its standard deviation, WITHIN_NOISE when it is only
  positive (or there is one pair).
  """
  d = Stat.of(np.asarray(b_values, np.float64) - np.asarray(a_values, np.float64))
  if d.mean <= 0:
    return DOES_NOT_HOLD, d
  return (HOLDS if d.std is not None and d.mean > d.std else WITHIN_NOISE), d


def weakest(verdicts: Sequence[str]) -> str:
  """The weakest of several verdicts (a claim made of parts holds as far as its weakest part)."""
  order = (HOLDS, WITHIN_NOISE, DOES_NOT_HOLD)
  return max(verdicts, key=order.index) if len(verdicts) else DOES_NOT_HOLD


def verdict_increasing(stats: Sequence[Stat]) -> str:
  """Do the means increase along the sequence? The weakest of the consecutive comparisons."""
  return weakest([verdict_less(a, b) for a, b in zip(stats, stats[1:])])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman rank correlation of two sequences without ties handling beyond ranking."""
  rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
  if len(x) < 2 or np.std(rx) == 0 or np.std(ry) == 0:
    return float("nan")
  return float(np.corrcoef(rx, ry)[0, 1])


# ----------------------------------------------------------------------------- machine

def machine_info() -> dict[str, Any]:
  """CPU model and ISA, cores, backend and devices: recorded with every figure."""
  import jax  # pylint: disable=g-import-not-at-top
  fields = {}
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:                       # the first CPU's entries
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
  except OSError:
    pass
  flags = fields.get("flags", "").split()
  return {"cpu": fields.get("model name") or platform.processor() or "unknown",
          "cpu_isa": [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                      if x in flags],
          "cpu_count": os.cpu_count(), "python": platform.python_version(),
          "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()],
          "device_kind": jax.devices()[0].device_kind,
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def now_utc() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def describe_machine(m: dict[str, Any]) -> str:
  isa = "+".join(m.get("cpu_isa") or []) or "no AVX2"
  return (f"{m.get('cpu', '?')} ({isa}), {m.get('cpu_count', '?')} cores, backend "
          f"{m.get('backend', '?')}, {len(m.get('devices', []))} device(s)")


# ----------------------------------------------------------------------------- writing

def _jsonable(x):
  if dataclasses.is_dataclass(x):
    return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (np.floating, float)):
    return None if not math.isfinite(float(x)) else float(x)
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, np.ndarray):
    return _jsonable(x.tolist())
  return x


def from_json(d: dict[str, Any]) -> Report:
  """A Report from its report.json dict."""
  def stat(s):
    return None if s is None else Stat(**s)
  tables = [Table(**{**t, "rows": [Row(r["label"], r["paper"], stat(r["ours"]), r["extra"])
                                    for r in t["rows"]]}) for t in d["tables"]]
  return Report(**{**d, "tables": tables, "figures": [Figure(**f) for f in d["figures"]],
                   "claims": [Claim(**c) for c in d["claims"]]})


def format_cell(v, scale: float) -> str:
  if v is None:
    return "—"
  if isinstance(v, Stat):
    return v.format(scale)
  if isinstance(v, float):
    return f"{v * scale:.3g}"
  return str(v)


def table_markdown(table: Table) -> str:
  unit = f" ({table.unit})" if table.unit else ""
  head = ["", f"paper{unit}", f"ours{unit}"] + table.extra_columns
  lines = [f"**{table.title}**", "", "| " + " | ".join(head) + " |",
           "|" + "---|" * len(head)]
  for r in table.rows:
    cells = [r.label, format_cell(r.paper, table.scale), format_cell(r.ours, table.scale)]
    cells += [format_cell(r.extra.get(c), 1.0) for c in table.extra_columns]
    lines.append("| " + " | ".join(cells) + " |")
  if table.note:
    lines += ["", table.note]
  return "\n".join(lines)


def to_markdown(report: Report) -> str:
  out = [f"# {report.title} (section {report.section}, scale `{report.scale}`)", "",
         f"Command: `{report.command}`  ",
         f"Machine: {describe_machine(report.machine)}  ",
         f"Date: {report.date}; wall time of this invocation {report.wall_seconds / 60:.1f} min; "
         f"training time of its {len(report.runs)} run{'s' if len(report.runs) != 1 else ''} "
         f"{sum(r.get('train_seconds', 0) for r in report.runs.values()) / 60:.1f} min in all",
         ""]
  for t in report.tables:
    out += [table_markdown(t), ""]
  if report.claims:
    out += ["## Does the paper's claim hold at this scale?", ""]
    out += [f"- **{c.verdict}**: {c.text} ({c.evidence})" for c in report.claims]
    out.append("")
  for f in report.figures:
    out += [f"## {f.title}", "", f"![{f.title}]({f.path})", ""]
    if f.caption:
      out += [f.caption, ""]
  if report.notes:
    out += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
  out += ["## Runs", "", "| run | steps | seed | training time | workdir |", "|---|---|---|---|---|"]
  for name, r in report.runs.items():
    out.append(f"| {name} | {r.get('step')} | {r.get('seed')} | "
               f"{r.get('train_seconds', 0) / 60:.1f} min | `{r.get('workdir')}` |")
  return "\n".join(out) + "\n"


def write_text(path: str, text: str) -> None:
  """Writes atomically; in a multi-process run only process 0 writes."""
  if not distributed.is_primary():
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    f.write(text)
  os.chmod(tmp, 0o644)
  os.replace(tmp, path)


def write(out_dir: str, report: Report) -> tuple[str, str]:
  """Writes report.md then report.json (the latter last: its presence means complete)."""
  md = os.path.join(out_dir, "report.md")
  js = os.path.join(out_dir, "report.json")
  write_text(md, to_markdown(report))
  write_text(js, json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n")
  return js, md
