"""``relief fit`` and ``relief predict``: the survival models on any episode CSV.

Registered into the main parser by ``add_commands(sub)``, which returns the
handlers by command name. Errors a user can fix (a missing column, no events, a
profile that does not match the model) are raised as ValueError naming the
column or key; ``pipeline.cli`` turns them into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipeline.models.cox import CoxResult, fit_cox
from pipeline.models.km import fit_km
from pipeline.models.logrank import logrank
from pipeline.models.ph_test import ph_test
from pipeline.models.predict import predict_from_tables, predict_profile, survival_at
from pipeline.models.rmst import rmst

PREDICT_DAYS = (1, 7, 14, 30, 60, 90)

FIT_EPILOG = """example:
  relief fit --episodes episodes.csv --time time_days --event event \\
      --covariates route,is_series,dose_mg_per_kg,infusion_hours --categorical route \\
      --group route --cluster patient_key --horizon 90 --out results/

writes:
  cox.csv       term, coef, se, hr, hr_lower, hr_upper, p   (with --covariates)
  km.csv        group, time, survival, lower, upper, at_risk, events
  summary.csv   group, n, events, median, median_lower, median_upper, rmst
  logrank.csv   statistic, df, p                            (with --group)
  ph_test.csv   term, statistic, p                          (with --covariates)
"""

PREDICT_EPILOG = """example:
  echo '{"route": "IV", "is_series": true, "dose_mg_per_kg": 0.5,
         "infusion_hours": 2, "n_comorbidities": 1, "baseline_score": 7}' > profile.json
  relief predict --profile profile.json --episodes episodes.csv --time time_days \\
      --event event --categorical route \\
      --covariates is_series,dose_mg_per_kg,infusion_hours,n_comorbidities,baseline_score

The profile has one key per covariate (a factor by its level, e.g. "route": "IM";
reference route is IV). Prints S(t) at days 1, 7, 14, 30, 60, 90, the median time to
pain return and the probability that relief lasts 30 and 90 days.
"""


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time", help="column with the time to pain return or censoring (days)")
    p.add_argument("--event", help="column: 1 = pain returned, 0 = censored")
    p.add_argument("--covariates", help="comma-separated covariates for the Cox model")
    p.add_argument("--categorical", help="comma-separated factor covariates (dummy coded)")
    p.add_argument("--strata", help="column to stratify the Cox model by")
    p.add_argument("--cluster", help="column for cluster-robust SEs (e.g. patient_key)")
    p.add_argument("--ties", choices=("efron", "breslow"), default="efron", help="default efron")


def add_commands(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``fit`` and ``predict`` to the ``relief`` sub-parsers; return their handlers."""
    fit = sub.add_parser(
        "fit",
        help="fit KM, log-rank, RMST, Cox and PH tests on an episode CSV",
        description="Fit the survival models on an episode CSV and write tidy CSV tables.",
        epilog=FIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("--episodes", type=Path, required=True, help="episode CSV file")
    _add_model_args(fit)
    fit.add_argument("--group", help="column to compare (KM per group, log-rank test)")
    fit.add_argument("--horizon", type=float, default=90.0, help="RMST horizon, days (90)")
    fit.add_argument("--out", type=Path, required=True, help="folder to write the CSVs to")

    predict = sub.add_parser(
        "predict",
        help="personalised relief curve for one patient profile",
        description="Fit a Cox model (or read one from a run) and predict S(t) for a profile.",
        epilog=PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("--profile", type=Path, required=True, help="JSON file: covariate values")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--episodes", type=Path, help="episode CSV: fit, then predict")
    source.add_argument("--run", help="RUN_ID: use the Cox model stored in the warehouse")
    predict.add_argument("--warehouse", help="SQLAlchemy URL (with --run)")
    _add_model_args(predict)
    predict.add_argument("--stratum", help="stratum to predict for (with --strata)")
    return {"fit": cmd_fit, "predict": cmd_predict}


def _read(args: argparse.Namespace) -> pd.DataFrame:
    if not args.time or not args.event:
        raise ValueError("--time and --event are required with --episodes")
    if not args.episodes.exists():
        raise ValueError(f"episode file {args.episodes} does not exist")
    frame = pd.read_csv(args.episodes)
    wanted = [args.time, args.event, *_split(args.covariates), *_split(args.categorical)]
    wanted += [c for c in (getattr(args, "group", None), args.strata, args.cluster) if c]
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{args.episodes}: column(s) {missing} not found (have {list(frame.columns)})"
        )
    events = pd.to_numeric(frame[args.event], errors="coerce")
    if not (events == 1).any():
        raise ValueError(f"{args.episodes}: column {args.event!r} has no events (no 1s)")
    return frame


def _fit_cox(frame: pd.DataFrame, args: argparse.Namespace) -> CoxResult:
    categorical = _split(args.categorical)
    covariates = [c for c in _split(args.covariates) if c not in categorical]
    return fit_cox(
        frame,
        args.time,
        args.event,
        covariates=covariates,
        categorical=categorical,
        strata=args.strata,
        cluster=args.cluster,
        ties=args.ties,
    )


def cmd_fit(args: argparse.Namespace) -> int:
    """Handler for ``relief fit``: write the CSV tables listed in the epilog."""
    frame = _read(args)
    args.out.mkdir(parents=True, exist_ok=True)
    km = fit_km(frame, args.time, args.event, group=args.group)
    km.curve[["group", "time", "survival", "lower", "upper", "at_risk", "events"]].to_csv(
        args.out / "km.csv", index=False
    )
    restricted = rmst(frame, args.time, args.event, group=args.group, horizon=args.horizon)
    summary = km.summary.merge(restricted[["group", "rmst"]], on="group", how="left")
    summary.to_csv(args.out / "summary.csv", index=False)
    written = ["km.csv", "summary.csv"]
    if args.group:
        logrank(frame, args.time, args.event, args.group).to_csv(
            args.out / "logrank.csv", index=False
        )
        written.append("logrank.csv")
    if args.covariates or args.categorical:
        cox = _fit_cox(frame, args)
        columns = ["term", "coef", "se", "hr", "hr_lower", "hr_upper", "p"]
        cox.table[columns].to_csv(args.out / "cox.csv", index=False)
        ph_test(cox)[["term", "statistic", "p"]].to_csv(args.out / "ph_test.csv", index=False)
        written += ["cox.csv", "ph_test.csv"]
    print(f"wrote {', '.join(written)} to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Handler for ``relief predict``: print the personalised curve and its summary."""
    try:
        profile = json.loads(args.profile.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"profile {args.profile}: cannot read JSON ({exc})") from exc
    if not isinstance(profile, dict):
        raise ValueError(f"profile {args.profile}: expected a JSON object of covariate values")
    if args.run is not None:
        coef, baseline, means, model = _stored_model(args)
        curve, summary = predict_from_tables(
            coef, baseline, means, profile, stratum=args.stratum, reference={"route": "IV"}
        )
    else:
        if not (args.covariates or args.categorical):
            raise ValueError("--covariates (and/or --categorical) are required to fit the model")
        cox = _fit_cox(_read(args), args)
        coef = cox.table
        curve, summary = predict_profile(cox, profile, stratum=args.stratum)
        model = f"Cox ({args.ties} ties) fitted on {args.episodes}, n={cox.n}, events={cox.events}"
    print(f"model: {model}")
    print(
        "terms: "
        + ", ".join(f"{t} (HR {hr:.2f})" for t, hr in zip(coef["term"], coef["hr"], strict=True))
    )
    print("day  P(still relieved)")
    for day in PREDICT_DAYS:
        print(f"{day:>3}  {survival_at(curve, day):.3f}")
    print(f"median time to pain return: {summary['median']:.1f} days")
    print(f"P(relief lasts 30 days): {summary['p30']:.3f}")
    print(f"P(relief lasts 90 days): {summary['p90']:.3f}")
    return 0


def _stored_model(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """The main Cox model of a pipeline run, as stored in results.cox / cox_baseline / cox_means."""
    from pipeline.config import from_env
    from pipeline.warehouse import Warehouse

    wh = Warehouse(from_env(warehouse_url=args.warehouse, demo=True).warehouse_url)
    if not wh.has_table("results", "cox"):
        raise ValueError(f"run {args.run!r}: {wh!r} holds no results yet; see `relief status`")
    tables = {}
    for name in ("cox", "cox_baseline", "cox_means"):
        table = wh.table("results", name)
        tables[name] = wh.read(
            "results", name, (table.c.run_id == args.run) & (table.c.model == "main")
        )
    if tables["cox"].empty:
        raise ValueError(f"run {args.run!r} has no stored Cox model in {wh!r}; see `relief status`")
    cox = tables["cox"]
    model = (
        f"main Cox model of run {args.run} (n={cox['n'].iloc[0]}, events={cox['events'].iloc[0]})"
    )
    return cox, tables["cox_baseline"], tables["cox_means"], model
