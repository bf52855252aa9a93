"""Figures for the report, returned as base64 PNG so the HTML needs no other file."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def km_plot(curves: pd.DataFrame, grouping: str, title: str) -> str:
    """Step curves with log-log 95 % bands, one colour per group."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for value, curve in curves.loc[curves.grouping == grouping].groupby("group_value"):
        curve = curve.sort_values("time")
        (line,) = ax.step(curve.time, curve.survival, where="post", label=str(value))
        ax.fill_between(
            curve.time, curve.lower, curve.upper, step="post", alpha=0.15, color=line.get_color()
        )
    ax.set_xlabel("days since end of treatment")
    ax.set_ylabel("probability still relieved")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title=grouping, frameon=False)
    return _png(fig)


def forest_plot(cox: pd.DataFrame) -> str:
    """Hazard ratios (log scale) with 95 % CI; HR < 1 means relief lasts longer."""
    table = cox.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.errorbar(
        table.hr,
        y,
        xerr=[table.hr - table.hr_lower, table.hr_upper - table.hr],
        fmt="o",
        color="#1f4e79",
        capsize=3,
    )
    ax.axvline(1, color="grey", linestyle="--")
    ax.set_xscale("log")
    ax.set_yticks(y, table.term)
    ax.set_xlabel("hazard ratio of pain returning (95 % CI)")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def dose_response_plot(curves: pd.DataFrame, variable: str, xlabel: str) -> str:
    """Adjusted HR across the range of one variable (natural spline), relative to its median."""
    curve = curves.loc[curves.variable == variable].sort_values("value")
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(curve.value, curve.hr, color="#1f4e79")
    ax.fill_between(curve.value, curve.hr_lower, curve.hr_upper, alpha=0.2, color="#1f4e79")
    ax.axhline(1, color="grey", linestyle="--")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("HR of pain returning vs median")
    ax.grid(alpha=0.3)
    return _png(fig)


def interval_plot(km: pd.DataFrame, turnbull: pd.DataFrame) -> str:
    """Right-censored KM (return at the visit it was seen) beside the Turnbull NPMLE."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    overall = km.loc[km.grouping == "all"].sort_values("time")
    ax.step(overall.time, overall.survival, where="post", label="Kaplan–Meier (visit of return)")
    tb = turnbull.sort_values("time")
    ax.step(
        tb.time, tb.survival, where="post", label="Turnbull (interval-censored)", linestyle="--"
    )
    ax.set_xlabel("days since end of treatment")
    ax.set_ylabel("probability still relieved")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _png(fig)
