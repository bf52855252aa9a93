"""Ingest benchmark: relief's full ingest against a plain COPY of the same files.

    python benchmarks/ingest.py                       # 100 000 patients, 10 M assessments
    python benchmarks/ingest.py --small               # 5 000 patients, 200 000 assessments
    python benchmarks/ingest.py --assessments 1000000 --repeats 3

Generates a landing delivery (cached under --cache-dir), then for each repeat runs two
steps in fresh child processes against a fresh PostgreSQL database each:
``plain COPY`` streams the CSV files into UNLOGGED text tables with COPY FROM STDIN
(the floor: no parsing in Python, no WAL); ``relief load`` is pipeline.ingest.ingest
without the GX row checks (hash, parse with pyarrow, pseudonymise, COPY into staging,
manifest, in one transaction): the load the 2× target is about; ``relief ingest`` is
the same with the row checks, which are validation's work done during the load (their
cost is what benchmarks/validate.py holds against the load; importing GX is untimed).
Prints median wall seconds, peak RSS of the child process (client side only; the server's
memory is not counted) and the ratio to the plain COPY. Target: ratio <= 2, RSS < 4 GB.

Also the CPU seconds each step used, measured in the same children: ``client`` (the
child's user + system time, its Arrow threads included) and ``server`` (the PostgreSQL
backends serving the fresh database, read from /proc: only when the server runs on this
host). On a shared machine wall time depends on what else runs; CPU seconds much less,
and their sum is what the step costs when every core is busy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peak import peak_rss_mb  # benchmarks/peak.py (each benchmark runs as a script)

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KEY = "benchmark-key-0123456789"


def generate(folder: Path, patients: int, assessments: int, seed: int = 1) -> Path:
    """A synthetic delivery in the landing contract, written with Arrow (vectorised)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2022-01-01T00:00:00")

    def ids(prefix: str, n: int, width: int) -> pa.Array:
        text = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
        return pc.binary_join_element_wise(prefix, pc.utf8_lpad(text, width, "0"), "")

    def stamps(n: int) -> pa.Array:
        seconds = rng.integers(0, 2 * 365 * 86400, n) // 60 * 60
        values = (t0 + seconds.astype("timedelta64[s]")).astype("datetime64[s]")
        return pc.strftime(pa.array(values), format="%Y-%m-%dT%H:%M:%S")

    pids = ids("P", patients, 7)
    conds = pa.array(["CRPS", "fibromyalgia", "neuropathic", "migraine", "low_back_pain"])
    tables = {
        "patients": {
            "patient_id": pids,
            "sex": pa.array(rng.choice(["F", "M"], patients)),
            "birth_year": pc.cast(pa.array(rng.integers(1940, 2000, patients)), pa.string()),
            "primary_condition": conds.take(pa.array(rng.integers(0, 5, patients))),
            "comorbidities": pa.array(rng.choice(["", "F41.1", "E11.9;I10"], patients)),
            "site_id": pa.array(rng.choice(["S01", "S02", "S03"], patients)),
        }
    }
    n_t = patients * 3
    tables["treatments"] = {
        "treatment_id": ids("T", n_t, 8),
        "patient_id": pids.take(pa.array(np.arange(n_t) // 3)),
        "administered_at": stamps(n_t),
        "duration_min": pc.cast(pa.array(rng.integers(1, 60, n_t)), pa.string()),
        "route": pa.array(rng.choice(["IV", "IM", "IN", "SC", "PO"], n_t)),
        "dose_mg": pc.cast(pa.array(np.round(rng.uniform(10, 100, n_t), 1)), pa.string()),
        "weight_kg": pc.cast(pa.array(np.round(rng.uniform(45, 120, n_t), 1)), pa.string()),
    }
    order = np.sort(rng.integers(0, patients, assessments))
    tables["pain_assessments"] = {
        "assessment_id": ids("A", assessments, 9),
        "patient_id": pids.take(pa.array(order)),
        "assessed_at": stamps(assessments),
        "pain_score": pc.cast(pa.array(rng.integers(0, 11, assessments)), pa.string()),
    }
    for name, columns in tables.items():
        pacsv.write_csv(
            pa.table(columns), folder / f"{name}.csv", pacsv.WriteOptions(quoting_style="none")
        )
    done.touch()
    return folder


def _fresh_db() -> tuple[str, object]:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.conftest import make_pg_database

    return make_pg_database(ADMIN_URL)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_seconds(url: str) -> float | None:
    """User + system CPU of the backends connected to ``url``'s database, from /proc."""
    import psycopg

    database = url.rsplit("/", 1)[1]
    admin = ADMIN_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            )
        ]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None  # the server is on another host (or not readable)
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class _Cpu:
    """CPU seconds of this process and of the database's backends between start and stop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = _cpu_seconds()
        self.server = _server_cpu_seconds(url)

    def stop(self) -> dict:
        server = _server_cpu_seconds(self.url)
        return {
            "client_cpu": _cpu_seconds() - self.client,
            "server_cpu": None if server is None or self.server is None else server - self.server,
        }


def child_plain_copy(folder: Path) -> dict:
    import psycopg

    url, drop = _fresh_db()
    try:
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            files = sorted(folder.glob("*.csv"))
            for path in files:
                header = [c.strip('"') for c in path.open().readline().strip().split(",")]
                cols = ", ".join(f'"{c}" text' for c in header)
                conn.execute(f'CREATE UNLOGGED TABLE "{path.stem}" ({cols})')
            conn.commit()
            cpu = _Cpu(url)
            started = time.perf_counter()
            rows = 0
            for path in files:
                with (
                    conn.cursor() as cur,
                    cur.copy(f'COPY "{path.stem}" FROM STDIN WITH (FORMAT csv, HEADER true)') as cp,
                    path.open("rb") as handle,
                ):
                    while block := handle.read(8 << 20):
                        cp.write(block)
            conn.commit()
            seconds = time.perf_counter() - started
            used = cpu.stop()
            for path in files:
                rows += conn.execute(f'SELECT count(*) FROM "{path.stem}"').fetchone()[0]
    finally:
        drop()
    return {"seconds": seconds, "rows": rows, **used}


class NoChecks:
    """Stands in for ``pipeline.row_checks.DeliveryChecks``: ingest without the GX row
    checks, i.e. the load alone (benchmarks only; ``relief`` always checks)."""

    def __init__(self, **_: object) -> None:
        pass

    def table(self, name: str) -> None:
        return None

    def results(self) -> dict:
        return {}

    def patient_refs(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def child_relief(folder: Path, checks: bool = True) -> dict:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from pipeline import ingest as ingest_module
    from pipeline.warehouse import Warehouse

    if checks:
        from pipeline import gx_runner

        gx_runner.suite_rules("pain_assessments")  # import GX (1-2 s a process) untimed
    else:
        ingest_module.DeliveryChecks = NoChecks
    url, drop = _fresh_db()
    try:
        wh = Warehouse(url)
        wh.create_schema()
        with wh.engine.connect():
            pass  # the pooled backend exists before the CPU count starts
        cpu = _Cpu(url)
        started = time.perf_counter()
        (outcome,) = ingest_module.ingest(wh, folder, KEY)
        seconds = time.perf_counter() - started
        used = cpu.stop()
        assert outcome.status == "loaded", outcome.error
        wh.engine.dispose()
    finally:
        drop()
    return {"seconds": seconds, "rows": outcome.rows, **used}


def run_child(step: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, "--cache-dir", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--assessments", type=int, default=10_000_000)
    parser.add_argument("--small", action="store_true", help="5 000 patients, 200 000 assessments")
    parser.add_argument("--repeats", type=int, default=3, help="median of N runs (default 3)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench-ingest"))
    parser.add_argument("--child", choices=("plain", "load", "relief"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child == "plain":
            result = child_plain_copy(args.cache_dir)
        else:
            result = child_relief(args.cache_dir, checks=args.child == "relief")
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    if args.small:
        args.patients, args.assessments = 5_000, 200_000
    folder = args.cache_dir / f"p{args.patients}-a{args.assessments}"
    t0 = time.perf_counter()
    generate(folder, args.patients, args.assessments)
    print(f"data: {folder} ({time.perf_counter() - t0:.1f} s to generate or find)")
    steps = {
        "plain COPY (unlogged)": "plain",
        "relief load (no checks)": "load",
        "relief ingest": "relief",
    }
    results: dict[str, list[dict]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            results[name].append(run_child(step, folder))
    base = statistics.median(r["seconds"] for r in results["plain COPY (unlogged)"])
    base_cpu = _median_cpu(results["plain COPY (unlogged)"])
    print(f"\nmedian of {args.repeats} run(s); peak RSS = max over runs of the client process")
    print(
        f"{'step':<24}{'rows':>12}{'wall s':>10}{'peak RSS MB':>14}{'× COPY':>9}"
        f"{'client CPU s':>14}{'server CPU s':>14}{'CPU × COPY':>12}"
    )
    for step, runs in results.items():
        wall = statistics.median(r["seconds"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        client, server = _median_cpu(runs)
        cpu = (
            ""
            if server is None or base_cpu[1] is None
            else f"{(client + server) / sum(base_cpu):>12.2f}"
        )
        server_text = "n/a" if server is None else f"{server:.2f}"
        print(
            f"{step:<24}{runs[0]['rows']:>12,}{wall:>10.2f}{rss:>14.0f}{wall / base:>9.2f}"
            f"{client:>14.2f}{server_text:>14}{cpu}"
        )
    return 0


def _median_cpu(runs: list[dict]) -> tuple[float, float | None]:
    client = statistics.median(r["client_cpu"] for r in runs)
    servers = [r["server_cpu"] for r in runs]
    return client, None if None in servers else statistics.median(servers)


if __name__ == "__main__":
    sys.exit(main())
