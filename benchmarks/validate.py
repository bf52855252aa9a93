"""Validation benchmark: relief's validate against relief's ingest of the same delivery.

    python benchmarks/validate.py                          # 1 M assessments, both engines
    python benchmarks/validate.py --assessments 10000000 --engines postgresql

Uses the landing delivery of benchmarks/ingest.py (generated once, cached under
--cache-dir). Per engine, a fresh child process gets a fresh warehouse (a SQLite file or
a new PostgreSQL database), runs ``pipeline.ingest.ingest`` and then
``pipeline.validate.validate`` (GX suites, cross-table SQL, promotion to core), and
reports the wall seconds of each. Target (issue 4): validate takes less than ingest.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

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
            (result,) = validate(wh, "bench", now=NOW)
            validate_s = time.perf_counter() - started
            wh.engine.dispose()
        finally:
            drop()
    return {
        "rows": outcome.rows,
        "ingest_s": ingest_s,
        "validate_s": validate_s,
        "promoted": sum(result.promoted.values()),
        "quarantined": sum(result.quarantined.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--assessments", type=int, default=1_000_000)
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench-ingest"))
    parser.add_argument("--child", choices=("sqlite", "postgresql"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.cache_dir)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    folder = generate(
        args.cache_dir / f"p{args.patients}-a{args.assessments}", args.patients, args.assessments
    )
    print(f"data: {folder}")
    print(
        f"{'engine':<12}{'rows':>12}{'ingest s':>10}{'validate s':>12}{'val/ing':>9}"
        f"{'promoted':>12}{'quarant.':>10}{'peak RSS MB':>13}"
    )
    for engine in args.engines:
        out = subprocess.run(
            [sys.executable, __file__, "--child", engine, "--cache-dir", str(folder)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{engine:<12}{r['rows']:>12,}{r['ingest_s']:>10.2f}{r['validate_s']:>12.2f}"
            f"{r['validate_s'] / r['ingest_s']:>9.2f}{r['promoted']:>12,}{r['quarantined']:>10,}"
            f"{r['peak_rss_mb']:>13.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
