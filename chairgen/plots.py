"""Line plots with error bars for the reports (matplotlib, headless), written atomically.

One function, because every plot in the reports is the same kind: a few series of (x, mean,
std) against one axis, e.g. MSE against the number of training models (Table 2) or the
consecutive-frame differences along a morph (Figure 6).
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence

from chairgen import distributed


def line_plot(path: str, series: Sequence[dict], *, xlabel: str, ylabel: str, title: str = "",
              logx: bool = False, size=(5.0, 3.4)) -> str:
  """Writes a PNG of `series`: dicts with x, y, optional yerr, label. Returns the path."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=size, dpi=120)
  try:
    for s in series:
      ax.errorbar(s["x"], s["y"], yerr=s.get("yerr"), label=s.get("label"), marker="o",
                  markersize=3, capsize=3, linewidth=1.2)
    if logx:  # label the x values themselves, not powers of ten
      ax.set_xscale("log")
      xs = sorted({float(x) for s in series for x in s["x"]})
      ax.set_xticks(xs)
      ax.set_xticklabels([f"{x:g}" for x in xs])
      ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
      ax.set_title(title, fontsize=10)
    if any(s.get("label") for s in series):
      ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if not distributed.is_primary():  # one writer in a multi-process run
      return path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=os.path.dirname(path) or ".")
    os.close(fd)
    fig.savefig(tmp, format="png")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  finally:
    plt.close(fig)
  return path
