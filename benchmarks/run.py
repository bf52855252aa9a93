"""End-to-end benchmark: every stage at several scales, on SQLite and PostgreSQL, beside its floor.

Not a test: it prints one table (stage, rows, median wall time, peak RSS, ratio to the
floor measured in the same run). Floors: a plain load of the same CSVs (ingest: COPY into
unlogged text tables on PostgreSQL; pyarrow read + one executemany per file into text
tables on SQLite), lifelines' CoxPHFitter on the same episodes (model); pyarrow reading
the CSVs is printed as its own row for reference. Each stage runs in a fresh process so
its peak RSS is its own.

    python benchmarks/run.py                      # 1 000 and 10 000 patients, both engines
    python benchmarks/run.py --scales 1000 10000 100000 --repeats 3
    python benchmarks/run.py --engines postgresql --scales 100000 --repeats 1
    python benchmarks/run.py --csv docs/bench.csv  # also write the rows (benchmarks/plot.py)
    python benchmarks/run.py --incremental --engines postgresql --scales 10000 100000

``--incremental`` measures a night with 1 % new data (issue 8): a full run on a fresh
warehouse, then a second run after a delivery of 1 % new patients (``--id-prefix B``),
each stage in its own process; it prints both runs' stage times, the stages the refit
policy skipped, and the second run's share of the first.

Synthetic deliveries are cached under --cache (default .bench-cache/, git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from peak import peak_rss_mb  # benchmarks/peak.py (each benchmark runs as a script)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STAGES = ("ingest", "validate", "derive", "model", "report")


def _child(job: tuple[str, dict[str, Any]]) -> tuple[float, float, Any]:
    """Run one job in this (fresh) process; returns (seconds, peak RSS MB, result)."""
    name, kw = job
    started = time.perf_counter()
    result = JOBS[name](**kw)
    seconds = time.perf_counter() - started
    return seconds, peak_rss_mb(), result


def _stage(stage: str, url: str, run_id: str, landing: str, report_dir: str) -> Any:
    from pipeline import stages
    from pipeline.config import Settings

    settings = Settings(warehouse_url=url, report_dir=Path(report_dir), demo=True)
    if stage == "begin":
        return stages.begin(settings, run_id=run_id, trigger="benchmark", landing=landing)
    if stage == "ingest":
        return stages.ingest(settings, run_id, landing)
    return getattr(stages, stage)(settings, run_id)


def _stage_timings(url: str, run_id: str) -> dict[str, float]:
    """The seconds each stage recorded in model_runs (inside the stage, without imports)."""
    import json

    from pipeline import runs
    from pipeline.warehouse import Warehouse

    return json.loads((runs.get_run(Warehouse(url), run_id) or {}).get("timings") or "{}")


def _floor_read(landing: str) -> int:
    import pyarrow.csv as pacsv

    return sum(pacsv.read_csv(p).num_rows for p in Path(landing).glob("*.csv"))


def _floor_copy(url: str, landing: str) -> int:
    import psycopg

    rows = 0
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        for path in sorted(Path(landing).glob("*.csv")):
            header = path.open().readline().strip().split(",")
            table = f"floor_{path.stem}"
            cols = ", ".join(f'"{c}" text' for c in header)
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE UNLOGGED TABLE {table} ({cols})")
            sql = f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)"
            with conn.cursor().copy(sql) as copy, path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    copy.write(block)
            rows += conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            conn.execute(f"DROP TABLE {table}")
    return rows


def _floor_insert(url: str, landing: str) -> int:
    """SQLite's plain load: pyarrow reads each CSV as text, one executemany per file into
    an index-less text table, one transaction (what COPY is to PostgreSQL)."""
    import sqlite3

    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(url.removeprefix("sqlite:///") + ".floor")
    rows = 0
    conn = sqlite3.connect(path)
    try:
        with conn:
            for csv in sorted(Path(landing).glob("*.csv")):
                header = csv.open().readline().strip().split(",")
                as_text = pacsv.ConvertOptions(column_types={c: pa.string() for c in header})
                data = pacsv.read_csv(csv, convert_options=as_text)
                cols = ", ".join(f'"{c}" TEXT' for c in header)
                marks = ", ".join("?" for _ in header)
                conn.execute(f'CREATE TABLE "floor_{csv.stem}" ({cols})')
                values = zip(*(c.to_pylist() for c in data.columns), strict=True)
                conn.executemany(f'INSERT INTO "floor_{csv.stem}" VALUES ({marks})', values)
                rows += data.num_rows
    finally:
        conn.close()
        path.unlink(missing_ok=True)
    return rows


def _floor_cox(url: str, run_id: str) -> int:
    from lifelines import CoxPHFitter

    from pipeline.derive_stage import read_episodes
    from pipeline.episodes import analysis_frame
    from pipeline.warehouse import Warehouse

    frame = analysis_frame(read_episodes(Warehouse(url), run_id))
    frame["route_IM"] = (frame["route"] == "IM").astype(float)
    frame["route_IN"] = (frame["route"] == "IN").astype(float)
    cols = [
        "route_IM",
        "route_IN",
        "is_series",
        "dose_mg_per_kg",
        "infusion_hours",
        "n_comorbidities",
        "baseline_score",
    ]
    data = frame[[*cols, "time_days", "event"]].astype(float)
    CoxPHFitter().fit(data, "time_days", "event")
    return len(data)


def _cox_only(url: str, run_id: str) -> int:
    from pipeline.config import ModelSettings
    from pipeline.derive_stage import read_episodes
    from pipeline.episodes import analysis_frame
    from pipeline.modelling import fit_main_cox
    from pipeline.warehouse import Warehouse

    frame = analysis_frame(read_episodes(Warehouse(url), run_id))
    return fit_main_cox(frame, ModelSettings()).n


JOBS = {
    "stage": _stage,
    "floor_read": _floor_read,
    "floor_copy": _floor_copy,
    "floor_insert": _floor_insert,
    "floor_cox": _floor_cox,
    "cox_only": _cox_only,
    "stage_timings": _stage_timings,
}


def run_in_child(pool_ctx: Any, name: str, **kw: Any) -> tuple[float, float, Any]:
    with pool_ctx.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_child, ((name, kw),))


def delivery(cache: Path, patients: int) -> Path:
    from pipeline.synth import write_delivery

    folder = cache / f"p{patients}" / "delivery-001"
    if not (folder / "truth.json").exists():
        print(f"  generating {patients} patients -> {folder}", file=sys.stderr)
        write_delivery(folder, patients=patients, seed=2026)
    return folder


def increment(cache: Path, patients: int) -> Path:
    """A delivery of 1 % new patients (ids prefixed B), as `relief synth --id-prefix B`."""
    from pipeline.synth import write_delivery

    new = max(1, patients // 100)
    folder = cache / f"p{patients}" / "delivery-002-new"
    if not (folder / "truth.json").exists():
        print(f"  generating {new} new patients -> {folder}", file=sys.stderr)
        write_delivery(folder, patients=new, seed=2027, id_prefix="B")
    return folder


def landing_of(cache: Path, name: str, deliveries: list[Path]) -> Path:
    """A landing folder holding (symlinks to) the given cached deliveries."""
    landing = cache / "landings" / name
    landing.mkdir(parents=True, exist_ok=True)
    for target in deliveries:
        link = landing / target.name
        if not link.exists():
            link.symlink_to(target.resolve(), target_is_directory=True)
    return landing


def fresh_warehouse(engine: str, tmp: Path) -> tuple[str, Any]:
    if engine == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"

        def remove() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return f"sqlite:///{path}", remove
    from sqlalchemy import create_engine, text

    name = f"relief_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def bench_scale(
    ctx: Any, engine: str, patients: int, repeats: int, cache: Path
) -> list[dict[str, Any]]:
    landing = delivery(cache, patients)
    rows_in = sum(sum(1 for _ in p.open()) - 1 for p in landing.glob("*.csv"))
    times: dict[str, list[float]] = {s: [] for s in (*STAGES, "total", "cox fit")}
    rss: dict[str, float] = {}
    floors: dict[str, list[float]] = {"read": [], "copy": [], "insert": [], "cox": []}
    for rep in range(repeats):
        url, drop = fresh_warehouse(engine, cache)
        run_id = f"bench-{rep}"
        try:
            run_in_child(
                ctx,
                "stage",
                stage="begin",
                url=url,
                run_id=run_id,
                landing=str(landing),
                report_dir=str(cache / "reports"),
            )
            total = 0.0
            for stage in STAGES:
                seconds, peak, _ = run_in_child(
                    ctx,
                    "stage",
                    stage=stage,
                    url=url,
                    run_id=run_id,
                    landing=str(landing),
                    report_dir=str(cache / "reports"),
                )
                times[stage].append(seconds)
                rss[stage] = max(rss.get(stage, 0.0), peak)
                total += seconds
                print(
                    f"  {engine} {patients} rep {rep + 1}: {stage} {seconds:.1f} s", file=sys.stderr
                )
            times["total"].append(total)
            seconds, peak, _ = run_in_child(ctx, "cox_only", url=url, run_id=run_id)
            times["cox fit"].append(seconds)
            rss["cox fit"] = max(rss.get("cox fit", 0.0), peak)
            seconds, peak, _ = run_in_child(ctx, "floor_read", landing=str(landing))
            floors["read"].append(seconds)
            rss["read csv"] = max(rss.get("read csv", 0.0), peak)
            floors["cox"].append(run_in_child(ctx, "floor_cox", url=url, run_id=run_id)[0])
            load = "copy" if engine == "postgresql" else "insert"
            floors[load].append(
                run_in_child(ctx, f"floor_{load}", url=url, landing=str(landing))[0]
            )
        finally:
            drop()
    med = {k: statistics.median(v) for k, v in times.items() if v}
    floor = {k: statistics.median(v) for k, v in floors.items() if v}
    ingest_floor = ("COPY", floor["copy"]) if "copy" in floor else ("executemany", floor["insert"])
    ratio = {"ingest": ingest_floor, "cox fit": ("lifelines Cox", floor["cox"])}
    med["read csv"] = floor["read"]
    out = []
    for stage, seconds in med.items():
        name, base = ratio.get(stage, ("", None))
        out.append(
            {
                "engine": engine,
                "patients": patients,
                "stage": stage,
                "rows": rows_in,
                "median_s": seconds,
                "peak_rss_mb": rss.get(stage, max(rss.values())),
                "floor": f"{name} {base:.1f} s" if base else "",
                "ratio": seconds / base if base else None,
            }
        )
    return out


def run_stages(
    ctx: Any, url: str, run_id: str, landing: Path, cache: Path, label: str
) -> dict[str, Any]:
    """One whole run, each stage in a fresh process; a stage the refit policy skipped
    (the model stage returns ``{"skipped": reason}``) ends the run, as in the DAG."""
    kw = {
        "url": url,
        "run_id": run_id,
        "landing": str(landing),
        "report_dir": str(cache / "reports"),
    }
    run_in_child(ctx, "stage", stage="begin", **kw)
    wall: dict[str, float] = {}
    skipped = ""
    for stage in STAGES:
        seconds, _, result = run_in_child(ctx, "stage", stage=stage, **kw)
        wall[stage] = seconds
        print(f"  {label}: {stage} {seconds:.1f} s", file=sys.stderr)
        if isinstance(result, dict) and result.get("skipped"):
            skipped = str(result["skipped"])
            break
    inside = run_in_child(ctx, "stage_timings", url=url, run_id=run_id)[2]
    return {"wall": wall, "inside": inside, "skipped": skipped}


def bench_incremental(
    ctx: Any, engine: str, patients: int, repeats: int, cache: Path
) -> list[dict[str, Any]]:
    """Full run, then the night after a 1 % delivery, on one fresh warehouse per repeat."""
    first, second = delivery(cache, patients), increment(cache, patients)
    landings = {
        "full": landing_of(cache, f"p{patients}-full", [first]),
        "+1 %": landing_of(cache, f"p{patients}-plus1", [first, second]),
    }
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in landings}
    for rep in range(repeats):
        url, drop = fresh_warehouse(engine, cache)
        try:
            for n, (name, landing) in enumerate(landings.items()):
                label = f"{engine} {patients} rep {rep + 1} {name}"
                measured[name].append(
                    run_stages(ctx, url, f"bench-{rep}-{n}", landing, cache, label)
                )
        finally:
            drop()
    out = []
    for name, reps in measured.items():
        for kind in ("wall", "inside"):
            row: dict[str, Any] = {
                "engine": engine,
                "patients": patients,
                "run": name,
                "kind": kind,
            }
            for stage in STAGES:
                values = [r[kind].get(stage) for r in reps]
                row[stage] = statistics.median(values) if None not in values else None
            totals = [sum(v for s, v in r[kind].items() if s in STAGES) for r in reps]
            row["total"] = statistics.median(totals)
            row["skipped"] = reps[-1]["skipped"]
            out.append(row)
    for kind in ("wall", "inside"):
        full, night = (r for r in out if r["kind"] == kind)
        night["share"] = night["total"] / full["total"]
    return out


def print_incremental(rows: list[dict[str, Any]], repeats: int) -> None:
    print(
        f"\nmedian of {repeats} run(s); wall = each stage's own process (imports included), "
        "inside = seconds the stage recorded in model_runs; '-' = skipped by the refit policy\n"
    )
    print(f"{'engine':<11}{'patients':>9}  {'run':<6}{'kind':<8}", end="")
    print("".join(f"{s:>10}" for s in (*STAGES, "total")), f"{'share':>7}")
    for r in rows:
        cells = "".join(f"{r[s]:>10.1f}" if r[s] is not None else f"{'-':>10}" for s in STAGES)
        share = f"{r['share']:.0%}" if "share" in r else ""
        print(
            f"{r['engine']:<11}{r['patients']:>9}  {r['run']:<6}{r['kind']:<8}{cells}"
            f"{r['total']:>10.1f} {share:>7}"
        )
    for r in rows:
        if r["skipped"] and r["kind"] == "wall":
            print(
                f"{r['engine']} {r['patients']} {r['run']}: model and report skipped: {r['skipped']}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scales", type=int, nargs="+", default=[1000, 10000], help="patients per scale"
    )
    parser.add_argument(
        "--engines", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per scale; the table shows medians"
    )
    parser.add_argument(
        "--cache", type=Path, default=ROOT / ".bench-cache", help="where deliveries are cached"
    )
    parser.add_argument(
        "--csv", type=Path, help="also write the table's rows to this CSV (appends)"
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="full run, then the night after a 1 %% delivery of new patients (issue 8)",
    )
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    if args.incremental:
        rows = []
        for patients in args.scales:
            for engine in args.engines:
                rows.extend(bench_incremental(ctx, engine, patients, args.repeats, args.cache))
        print_incremental(rows, args.repeats)
        return 0
    rows = []
    for patients in args.scales:
        for engine in args.engines:
            rows.extend(bench_scale(ctx, engine, patients, args.repeats, args.cache))
    print(
        f"\nmedian of {args.repeats} run(s); peak RSS of the stage's own process; ratio = time / floor\n"
    )
    print(
        f"{'engine':<11}{'patients':>9}  {'stage':<9}{'rows':>11}{'median s':>10}{'peak MB':>9}  {'floor':<22}{'ratio':>7}"
    )
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else ""
        print(
            f"{r['engine']:<11}{r['patients']:>9}  {r['stage']:<9}{r['rows']:>11}{r['median_s']:>10.1f}"
            f"{r['peak_rss_mb']:>9.0f}  {r['floor']:<22}{ratio:>7}"
        )
    if args.csv:
        write_csv(args.csv, rows, args.repeats)
    return 0


def write_csv(path: Path, rows: list[dict[str, Any]], repeats: int) -> None:
    """Append the rows (one per engine, scale and stage) to ``path``, header if new."""
    fields = [
        "engine",
        "patients",
        "stage",
        "rows",
        "median_s",
        "peak_rss_mb",
        "floor",
        "ratio",
        "repeats",
    ]
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        for r in rows:
            writer.writerow({**r, "repeats": repeats})


if __name__ == "__main__":
    sys.exit(main())
