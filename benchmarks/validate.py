"""Validation benchmark: what validating a delivery costs, against ingesting it.

    python benchmarks/validate.py                          # 1 M assessments, both engines
    python benchmarks/validate.py --assessments 10000000 --engines postgresql --repeats 3

Uses the landing delivery of benchmarks/ingest.py (generated once, cached under
--cache-dir). Validation happens in two places: ingest runs the GX suites on the rows as
it streams them into staging (``pipeline.row_checks``), and the validate stage
quarantines what they found, runs the cross-table SQL and promotes the clean rows to
core. So per engine and repeat two fresh child processes, each with a fresh warehouse
(a SQLite file or a new PostgreSQL database), measure:

* ``ingest`` without the row checks (``pipeline.ingest.DeliveryChecks`` replaced by a
  stand-in that checks nothing): the load itself, the figure validation is held to;
* ``ingest`` as relief runs it, with the checks; the difference is what the checks
  add to the load (``+checks``), and the check thread's own busy seconds are printed
  too;
* the validate stage's rules: quarantining the row-check failures (``row``) and the
  cross-table SQL (``cross``).

*Validation* = ``+checks`` + ``row`` + ``cross``; target (issue 4): below the load
without checks (``val/ing`` < 1). Promotion, the durable write of every clean row into
core, is printed beside its own floor measured in the same child: a plain ``INSERT
INTO`` an identical copy of each core table (same indexes, logged) ``SELECT *`` from the
promoted rows. Importing GX and opening its context (once per process, ~2 s) is timed
apart, before the checked ingest. Medians of --repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from peak import peak_rss_mb  # benchmarks/peak.py (each benchmark runs as a script)

sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.ingest import ADMIN_URL, KEY, NoChecks, generate  # noqa: E402

NOW = datetime(2025, 1, 1)  # the generated data spans 2022-2023


def child(engine: str, folder: Path, checks: bool) -> dict:
    from pipeline import ingest as ingest_module
    from pipeline.validate import validate
    from pipeline.warehouse import Warehouse

    if not checks:
        ingest_module.DeliveryChecks = NoChecks  # benchmark only: the load without checks
    with tempfile.TemporaryDirectory() as tmp:
        if engine == "sqlite":
            url, drop = f"sqlite:///{tmp}/bench.db", lambda: None
        else:
            from tests.conftest import make_pg_database

            url, drop = make_pg_database(ADMIN_URL)
        try:
            wh = Warehouse(url)
            wh.create_schema()
            started = time.perf_counter()
            if checks:
                warm_up_gx()
            import_s = time.perf_counter() - started
            checker = _Watched.install(ingest_module) if checks else None
            started = time.perf_counter()
            (outcome,) = ingest_module.ingest(wh, folder, KEY, as_of=NOW)
            ingest_s = time.perf_counter() - started
            assert outcome.status == "loaded", outcome.error
            out = {"rows": outcome.rows, "ingest_s": ingest_s, "gx_import_s": import_s}
            if checks:
                started = time.perf_counter()
                (result,) = validate(wh, "bench")
                out["validate_s"] = time.perf_counter() - started
                out.update({f"{step}_s": seconds for step, seconds in result.seconds.items()})
                out["check_thread_s"] = checker.busy_seconds()
                out["promote_floor_s"] = promotion_floor(wh)
                out["quarantined"] = sum(result.quarantined.values())
            wh.engine.dispose()
        finally:
            drop()
    return out


class _Watched:
    """Keeps the delivery's ``DeliveryChecks`` so its worker's busy seconds can be read."""

    made: list = []

    @classmethod
    def install(cls, ingest_module) -> type[_Watched]:
        real = ingest_module.DeliveryChecks

        def make(**kwargs: object):
            checks = real(**kwargs)
            cls.made.append(checks)
            return checks

        ingest_module.DeliveryChecks = make
        return cls

    @classmethod
    def busy_seconds(cls) -> float:
        return sum(c.busy_seconds for c in cls.made)


def warm_up_gx() -> None:
    """Import GX and open its context (once per process; a few seconds) outside the timing."""
    from pipeline import gx_runner

    gx_runner.suite_rules("pain_assessments")


def promotion_floor(wh) -> float:
    """Seconds to copy every promoted core row into an identical, empty, logged table."""
    from sqlalchemy import text

    from pipeline.schema import LANDING_TABLES

    started = time.perf_counter()
    with wh.begin() as conn:
        for table in LANDING_TABLES:
            if wh.dialect == "postgresql":
                core, floor = f"core.{table}", f"core.floor_{table}"
                conn.execute(text(f"CREATE TABLE {floor} (LIKE {core} INCLUDING ALL)"))
            else:
                core, floor = f"core__{table}", f"floor__{table}"
                for (ddl,) in conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE tbl_name = :t AND sql IS NOT NULL"),
                    {"t": core},
                ):  # the table first, then its indexes
                    conn.execute(text(ddl.replace(core, floor)))
            conn.execute(text(f"INSERT INTO {floor} SELECT * FROM {core}"))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--assessments", type=int, default=1_000_000)
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--repeats", type=int, default=1, help="median of N runs (default 1)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench-ingest"))
    parser.add_argument("--child", choices=("sqlite", "postgresql"), help=argparse.SUPPRESS)
    parser.add_argument("--no-checks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.cache_dir, checks=not args.no_checks)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    folder = generate(
        args.cache_dir / f"p{args.patients}-a{args.assessments}", args.patients, args.assessments
    )
    print(f"data: {folder}")
    header = (
        ("engine", 12), ("rows", 12), ("ingest", 8), ("+checks", 8), ("ingest", 8),
        ("thread", 8), ("row", 7), ("cross", 7), ("valid.", 8), ("val/ing", 8),
        ("GX imp", 8), ("promote", 9), ("floor", 7), ("pro/flo", 8), ("quarant.", 10),
        ("peak MB", 9),
    )  # fmt: skip
    print(
        "".join(
            f"{name:>{width}}" if i else f"{name:<{width}}"
            for i, (name, width) in enumerate(header)
        )
    )
    print(f"{'':<12}{'':>12}{'no chk':>8}{'':>8}{'checked':>8}")
    for engine in args.engines:
        plain, checked = [], []
        for _ in range(args.repeats):
            for runs, flags in ((plain, ["--no-checks"]), (checked, [])):
                cmd = [sys.executable, __file__, "--child", engine, "--cache-dir", str(folder)]
                out = subprocess.run(cmd + flags, check=True, capture_output=True, text=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        load = statistics.median(run["ingest_s"] for run in plain)
        r = {k: statistics.median(run.get(k, float("nan")) for run in checked) for k in checked[0]}
        added = r["ingest_s"] - load
        validation = added + r["row_rules_s"] + r["cross_table_s"]
        print(
            f"{engine:<12}{r['rows']:>12,.0f}{load:>8.2f}{added:>8.2f}{r['ingest_s']:>8.2f}"
            f"{r['check_thread_s']:>8.2f}{r['row_rules_s']:>7.2f}{r['cross_table_s']:>7.2f}"
            f"{validation:>8.2f}{validation / load:>8.2f}{r['gx_import_s']:>8.2f}"
            f"{r['promote_s']:>9.2f}{r['promote_floor_s']:>7.2f}"
            f"{r['promote_s'] / r['promote_floor_s']:>8.2f}{r['quarantined']:>10,.0f}"
            f"{r['peak_rss_mb']:>9.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
