"""Scaling plot from the end-to-end benchmark's CSV (``benchmarks/run.py --csv``).

    python benchmarks/plot.py docs/bench.csv docs/bench-scaling.png

One panel per engine: median wall time per stage (and the whole run) against the
number of patients, log-log, with the 5-minute target as a dashed line. Where a scale
was measured more than once (several CSV runs), the last row wins.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STAGES = ("ingest", "validate", "derive", "model", "report", "total")


def plot(csv_path: Path, out: Path) -> None:
    rows = pd.read_csv(csv_path).drop_duplicates(["engine", "patients", "stage"], keep="last")
    engines = sorted(rows["engine"].unique())
    fig, axes = plt.subplots(1, len(engines), figsize=(6 * len(engines), 4.5), squeeze=False)
    for ax, engine in zip(axes[0], engines, strict=True):
        data = rows[rows["engine"] == engine]
        for stage in STAGES:
            line = data[data["stage"] == stage].sort_values("patients")
            if line.empty:
                continue
            style = {"linewidth": 2.5, "color": "black"} if stage == "total" else {"marker": "o"}
            ax.plot(line["patients"], line["median_s"], label=stage, **style)
        ax.axhline(300, linestyle="--", color="grey", linewidth=1)
        ax.text(data["patients"].min(), 320, "5 min target", color="grey", fontsize=8)
        ax.set(xscale="log", yscale="log", xlabel="patients", ylabel="median wall time (s)")
        ax.set_title(engine)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    plot(args.csv, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
