"""Cox fit benchmark: relief's ``fit_cox`` (statsmodels PHReg, vectorised) beside lifelines.

Same synthetic frame for both, in the same process: n rows, 8 continuous/binary
covariates, exponential event times (continuous, so no ties: Efron == Breslow) with
about 30 % independent censoring. Prints one table: median wall time of ``repeats``
fits per row count, and the ratio relief / lifelines (issue 5 target: <= 1.5).

    python benchmarks/cox.py                       # 10^4, 10^5, 10^6 rows, median of 3
    python benchmarks/cox.py --rows 10000 --repeats 1 --plain   # also time plain PHReg
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BETA = np.array([0.4, -0.3, 0.2, 0.0, 0.1, -0.2, 0.3, 0.05])


def synthetic_frame(n: int, seed: int = 2026) -> pd.DataFrame:
    """n rows, covariates x0..x7 (x0-x5 normal, x6-x7 binary), time, event."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=(n, 6)), rng.integers(0, 2, size=(n, 2))]).astype(float)
    event_time = rng.exponential(np.exp(-x @ BETA))
    censor_time = rng.exponential(2.5, size=n)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["time"] = np.minimum(event_time, censor_time)
    frame["event"] = (event_time <= censor_time).astype(int)
    return frame


def time_it(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ties", default="efron", choices=["efron", "breslow"])
    parser.add_argument("--plain", action="store_true", help="also time statsmodels' own PHReg")
    args = parser.parse_args(argv)

    from lifelines import CoxPHFitter
    from statsmodels.duration.hazard_regression import PHReg

    from pipeline.models.cox import fit_cox

    covs = [f"x{i}" for i in range(8)]
    rows = []
    for n in args.rows:
        frame = synthetic_frame(n)
        ties = frame.loc[frame["event"] == 1, "time"].duplicated().sum()
        ours_s, ours = time_it(
            lambda frame=frame: fit_cox(frame, "time", "event", covs, ties=args.ties), args.repeats
        )
        ll_s, ll = time_it(
            lambda frame=frame: CoxPHFitter().fit(frame, "time", "event"), args.repeats
        )
        diff = float(np.max(np.abs(ours.table["coef"].to_numpy() - ll.params_[covs].to_numpy())))
        plain = float("nan")
        if args.plain:
            plain, _ = time_it(
                lambda frame=frame: PHReg(
                    frame["time"].to_numpy(),
                    frame[covs].to_numpy(),
                    status=frame["event"].to_numpy(),
                    ties=args.ties,
                ).fit(),
                args.repeats,
            )
        rows.append(
            (n, int(frame["event"].sum()), int(ties), ours_s, ll_s, ours_s / ll_s, plain, diff)
        )
        print(f"  {n} rows done", file=sys.stderr, flush=True)

    print(f"\nCox fit, 8 covariates, ties={args.ties}, median of {args.repeats}\n")
    print(
        "| rows | events | tied events | relief fit_cox s | lifelines s | ratio | plain PHReg s | max |coef diff| |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, events, ties, ours_s, ll_s, ratio, plain, diff in rows:
        plain_txt = "" if np.isnan(plain) else f"{plain:.2f}"
        print(
            f"| {n:,} | {events:,} | {ties} | {ours_s:.2f} | {ll_s:.2f} | {ratio:.2f} | {plain_txt} | {diff:.1e} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
