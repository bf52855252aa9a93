"""Validation benchmark: relief's validate against relief's ingest of the same delivery.

    python benchmarks/validate.py                          # 1 M assessments, both engines
    python benchmarks/validate.py --assessments 10000000 --engines postgresql

Uses the landing delivery of benchmarks/ingest.py (generated once, cached under
--cache-dir). Per engine, a fresh child process gets a fresh warehouse (a SQLite file or
a new PostgreSQL database), runs ``pipeline.ingest.ingest`` and then
``pipeline.validate.validate`` (GX suites, cross-table SQL, promotion to core), and
reports the wall seconds of each, median of --repeats (importing GX and opening its
context, once per process, is timed apart). Validation is split into its
steps: reading staging, the GX suites, the cross-table SQL (together: the *rules*) and
the promotion of clean rows to core. Promotion is a durable write of every row, so it
is printed beside its own floor measured in the same child: a plain ``INSERT INTO``
an identical copy of each core table (same indexes, logged) ``SELECT *`` from the
promoted rows. Target (issue 4): validation takes less time than ingest.
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

from benchmarks.ingest import ADMIN_URL, KEY, generate  # noqa: E402

NOW = datetime(2025, 1, 1)  # the generated data spans 2022-2023


def child(engine: str, folder: Path) -> dict:
    from pipeline.ingest import ingest
    from pipeline.validate import validate
    from pipeline.warehouse import Warehouse

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
            (outcome,) = ingest(wh, folder, KEY)
            ingest_s = time.perf_counter() - started
            assert outcome.status == "loaded", outcome.error
            started = time.perf_counter()
            warm_up_gx()
            import_s = time.perf_counter() - started
            started = time.perf_counter()
            (result,) = validate(wh, "bench", now=NOW)
            validate_s = time.perf_counter() - started
            floor_s = promotion_floor(wh)
            wh.engine.dispose()
        finally:
            drop()
    steps = getattr(result, "seconds", {})  # older commits did not time their steps
    return {
        "rows": outcome.rows,
        "ingest_s": ingest_s,
        "gx_import_s": import_s,
        "validate_s": validate_s,
        **{f"{step}_s": seconds for step, seconds in steps.items()},
        "promote_floor_s": floor_s,
        "promoted": sum(result.promoted.values()),
        "quarantined": sum(result.quarantined.values()),
    }


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
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.cache_dir)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    folder = generate(
        args.cache_dir / f"p{args.patients}-a{args.assessments}", args.patients, args.assessments
    )
    print(f"data: {folder}")
    steps = ("read_s", "gx_s", "cross_table_s", "promote_s", "promote_floor_s")
    print(
        f"{'engine':<12}{'rows':>12}{'ingest s':>10}{'GX import':>10}{'validate s':>12}{'val/ing':>9}"
        f"{'read':>7}{'GX':>7}{'cross':>7}{'rules':>7}{'rul/ing':>9}{'promote':>9}"
        f"{'floor':>7}{'pro/flo':>9}{'quarant.':>10}{'peak RSS MB':>13}"
    )
    for engine in args.engines:
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--child", engine, "--cache-dir", str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = {k: statistics.median(run.get(k, float("nan")) for run in runs) for k in runs[0]}
        r.update({k: statistics.median(run.get(k, float("nan")) for run in runs) for k in steps})
        rules = r["read_s"] + r["gx_s"] + r["cross_table_s"]
        print(
            f"{engine:<12}{r['rows']:>12,.0f}{r['ingest_s']:>10.2f}{r['gx_import_s']:>10.2f}"
            f"{r['validate_s']:>12.2f}"
            f"{r['validate_s'] / r['ingest_s']:>9.2f}{r['read_s']:>7.2f}{r['gx_s']:>7.2f}"
            f"{r['cross_table_s']:>7.2f}{rules:>7.2f}{rules / r['ingest_s']:>9.2f}"
            f"{r['promote_s']:>9.2f}{r['promote_floor_s']:>7.2f}"
            f"{r['promote_s'] / r['promote_floor_s']:>9.2f}{r['quarantined']:>10,.0f}"
            f"{r['peak_rss_mb']:>13.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
