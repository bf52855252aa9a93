"""The ``relief`` command line: the pipeline's stages without Airflow, for analysts and tests.

Errors a user can fix (bad input, a missing setting, a blocked validation) end as one
clear line on stderr and exit code 2; only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline import cli_db, cli_dq, cli_ingest, cli_models, cli_status
from pipeline.config import ConfigError, from_env

EPILOG = """examples:
  relief synth --patients 2000 --seed 7 --out landing/2025-01-15
  relief run --landing landing/ --demo
  relief run --landing landing/ --warehouse postgresql://postgres@127.0.0.1/relief
  relief ingest --source omop --path postgresql://reader@cdm-host/cdm --cdm-schema cdm54
  relief status --limit 5        # recent runs: state, counts, seconds per stage
  relief dq                      # the last run's quarantined rows, grouped by rule
  relief db upgrade --warehouse postgresql://postgres@127.0.0.1/relief   # apply migrations
  relief predict --run RUN_ID --profile profile.json
  relief fit --episodes episodes.csv --time days --event returned --covariates dose --out fit/

environment:
  RELIEF_WAREHOUSE_URL   default warehouse (SQLAlchemy URL); default sqlite:///relief_warehouse.db
  RELIEF_PSEUDONYM_KEY   secret key for pseudonymising patient ids (required unless --demo;
                         also read from the Airflow Variable relief_pseudonym_key or the
                         password of the Airflow Connection relief_pseudonym)
  RELIEF_REPORT_DIR      where reports are written; default ./reports
  RELIEF_FULL_DERIVE     1: re-derive every patient (default: only patients with new rows)
  RELIEF_REFIT           1: refit the models on every nightly run
  RELIEF_REFIT_SHARE     refit when more than this share of episodes is new; default 0.05
  RELIEF_REFIT_MAX_DAYS  refit when the last fit is older than this; default 7
"""


def build_parser() -> tuple[
    argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]
]:
    parser = argparse.ArgumentParser(
        prog="relief",
        description="relief: how long does pain relief last after ketamine, and what makes it last longer? "
        "Ingest, validate, derive episodes, fit survival models, write results and a report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser(
        "synth",
        help="write a synthetic delivery (no real patients) with its true hazard ratios",
        description="Write a synthetic landing delivery: patients, treatments, pain_assessments, "
        "adverse_events and truth.json (the true log hazard ratios). Same seed, same bytes.",
    )
    synth.add_argument(
        "--patients", type=int, default=2000, help="number of patients (default 2000)"
    )
    synth.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    synth.add_argument("--out", type=Path, required=True, help="delivery folder to write")
    synth.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)"
    )
    synth.add_argument(
        "--id-prefix",
        default="",
        help="prefix for patient/treatment/assessment ids, e.g. B for a second delivery of new patients",
    )

    run = sub.add_parser(
        "run",
        help="run every stage in-process on a landing folder",
        description="Ingest new deliveries under LANDING, validate, derive episodes, fit models and write "
        "the report: the same functions the Airflow DAG calls. Prints the run id and the report path.",
    )
    run.add_argument(
        "--landing", type=Path, required=True, help="a delivery folder, or a folder of them"
    )
    run.add_argument(
        "--warehouse",
        help="SQLAlchemy URL (default $RELIEF_WAREHOUSE_URL or sqlite:///relief_warehouse.db)",
    )
    run.add_argument("--report-dir", type=Path, help="where to write reports (default ./reports)")
    run.add_argument("--run-id", help="re-use a run id: its results are replaced atomically")
    run.add_argument(
        "--demo",
        action="store_true",
        help="synthetic data: allow the public demo pseudonymisation key",
    )
    commands = {"synth": cmd_synth, "run": cmd_run}
    for module in (cli_ingest, cli_dq, cli_models, cli_db, cli_status):
        commands.update(module.add_commands(sub))
    return parser, commands


def cmd_synth(args: argparse.Namespace) -> int:
    from pipeline.synth import write_delivery

    if args.patients < 1:
        raise ConfigError("--patients must be at least 1")
    out = write_delivery(
        args.out, patients=args.patients, seed=args.seed, fmt=args.format, id_prefix=args.id_prefix
    )
    print(f"wrote synthetic delivery for {args.patients} patients (seed {args.seed}) to {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.stages import run_all

    settings = from_env(warehouse_url=args.warehouse, report_dir=args.report_dir, demo=args.demo)
    summary = run_all(settings, args.landing, trigger="cli", run_id=args.run_id)
    ingest = summary.counts["ingest"]
    for error in ingest.get("failed", []):
        print(f"warning: delivery not loaded: {error}", file=sys.stderr)
    print(f"run id: {summary.run_id}")
    print(f"report: {summary.report}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.verbose:
        logging.getLogger("pipeline").setLevel(logging.INFO)
    from pipeline.errors import user_errors

    try:
        return commands[args.command](args)
    except (*user_errors(), ValueError) as exc:
        print(f"relief {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
