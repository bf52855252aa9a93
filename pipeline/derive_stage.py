"""The derive stage: core tables -> episodes, re-deriving only the patients a night touched.

An episode depends on one patient's own patient row, treatments and pain assessments
(``pipeline.episodes``), so the nightly run keeps every patient's episodes in
``analysis.current_episodes`` and replaces only the rows of the patients whose core rows
changed since the last derive, in one transaction. A patient is *touched* when

* a core row of theirs comes from a delivery promoted since the last derive (new
  patients, new rows, rows corrected by natural key), or
* their core row counts differ from those recorded at their last derive
  (``analysis.derived_patients``): a corrected row moved to another patient, or rows
  deleted from core, leave no trace of a new delivery on the patient who lost them.

A full re-derive replaces every row: on the first derive, when the outcome definition
differs from the one the current episodes were derived with, on request
(``Settings.full_derive``, the nightly DAG's ``full_derive`` param), and when more than
half of the patients were touched anyway. Both paths give the same rows
(``tests/warehouse/test_incremental_derive.py``). A re-run of the same run id repeats
what it did (its deliveries count as new again, a full derive stays full), so it
leaves the same tables.

The model stage fits a copy of the current episodes taken under its run id
(``snapshot_episodes``); an analyst's run derives its own episodes from all of core with
its own outcome definition (``derive_and_store``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    case,
    delete,
    false,
    func,
    literal,
    select,
    update,
)

from pipeline.config import OutcomeDefinition
from pipeline.episodes import derive_episodes
from pipeline.schema import CORE_COLUMNS, EPISODE_COLUMNS, PATIENT_KEY
from pipeline.warehouse import Warehouse

# The core tables episodes are derived from, and the derived_patients column counting each.
INPUTS: dict[str, str] = {
    "patients": "patient_rows",
    "treatments": "treatment_rows",
    "pain_assessments": "assessment_rows",
}
# What derive_episodes reads of each: the contract columns, without the row ids, lineage
# and natural keys (reading those too took the 100 000-patient derive to 3.8 GB).
DERIVE_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": CORE_COLUMNS["patients"],
    "treatments": tuple(c for c in CORE_COLUMNS["treatments"] if c != "treatment_id"),
    "pain_assessments": tuple(c for c in CORE_COLUMNS["pain_assessments"] if c != "assessment_id"),
}
FULL_ABOVE_SHARE = 0.5  # touched more than this share of patients: derive them all at once
LOCK_ID = 8_020_508  # PostgreSQL advisory lock: one derive of the current episodes at a time


def derive_and_store(wh: Warehouse, run_id: str, outcome: OutcomeDefinition) -> dict[str, Any]:
    """Derive episodes from all of core and make them this run's rows (a re-run replaces them)."""
    episodes = derive_episodes(
        *(wh.read("core", name, columns=DERIVE_COLUMNS[name]) for name in INPUTS), outcome
    )
    with wh.begin() as conn:
        wh.replace_run_rows(conn, "analysis", "episodes", run_id, episodes)
    return {
        "episodes": len(episodes),
        "responders": int(episodes["responded"].sum()) if len(episodes) else 0,
        "events": int(episodes["event"].fillna(0).sum()) if len(episodes) else 0,
    }


def read_episodes(wh: Warehouse, run_id: str) -> pd.DataFrame:
    """This run's episodes, with timestamp columns parsed."""
    table = wh.table("analysis", "episodes")
    return wh.read("analysis", "episodes", table.c.run_id == run_id)


def derive_current(
    wh: Warehouse, run_id: str, outcome: OutcomeDefinition, *, full: bool = False
) -> dict[str, Any]:
    """Bring ``analysis.current_episodes`` up to date with core, incrementally when possible.

    Returns the stage's counts: ``mode`` (full | incremental) and why, the patients and
    deliveries derived, the episodes written, and the totals of the current episodes.
    """
    definition = json.dumps(asdict(outcome), sort_keys=True)
    with wh.begin() as conn:
        _lock(wh, conn)
        state = _state(wh, conn)
        promoted = _promoted(wh, conn)
        reason = full_derive_reason(state, run_id, definition, requested=full)
        if reason is None:
            pending = sorted(set(promoted) - _derived_by_others(wh, conn, run_id))
            touched = touched_patients(wh, conn, pending, run_id)
            known = _count(conn, wh.table("analysis", "derived_patients"))
            if touched and len(touched) > FULL_ABOVE_SHARE * max(known, 1):
                reason = f"{len(touched)} of {known} patients touched"
        if reason is None:
            written = _derive_patients(wh, conn, run_id, outcome, touched)
            _mark_derived(wh, conn, run_id, pending, replace_all=False)
            counts: dict[str, Any] = {"mode": "incremental", "patients": len(touched)}
        else:
            written = _derive_all(wh, conn, run_id, outcome)
            _mark_derived(wh, conn, run_id, promoted, replace_all=True)
            pending = promoted
            counts = {"mode": "full", "why": reason}
        _set_state(wh, conn, run_id, counts["mode"], definition)
        totals = current_totals(wh, conn)
    return {**counts, "deliveries": len(pending), "derived": written, **totals}


def full_derive_reason(
    state: dict[str, Any] | None, run_id: str, definition: str, *, requested: bool = False
) -> str | None:
    """Why this derive must re-derive every patient, or None when an incremental one will do."""
    if requested:
        return "full derive requested"
    if state is None:
        return "first derive"
    if state["outcome"] != definition:
        return "outcome definition changed"
    if state["run_id"] == run_id and state["mode"] == "full":
        return "re-run of a full derive"
    return None


def touched_patients(wh: Warehouse, conn: Connection, pending: list[str], run_id: str) -> list[str]:
    """Patients with a core row from a ``pending`` delivery or with changed core row counts
    (and, on a re-run, those this run derived before, so it repeats itself exactly).

    Usually one cheap pass per core table finds the patients of the pending deliveries'
    rows and counts the other rows: when those equal the counts recorded at the last
    derive, no older row was replaced or deleted and these patients are all. Otherwise
    (corrections, deletions, a re-run) each patient's counts are compared
    (``recounted_patients``). Only keys leave the database.
    """
    known = wh.table("analysis", "derived_patients")
    again = select(known.c[PATIENT_KEY]).where(known.c.run_id == run_id)
    touched: set[str] = set(conn.execute(again).scalars())
    fresh, intact = _fresh_patients(wh, conn, pending)
    if intact and not touched:
        return sorted(fresh)
    return sorted(touched | fresh | recounted_patients(wh, conn, pending))


def _fresh_patients(wh: Warehouse, conn: Connection, pending: list[str]) -> tuple[set[str], bool]:
    """Patients with a row from ``pending`` deliveries, and whether the rows of all other
    deliveries still number what ``analysis.derived_patients`` recorded (nothing removed)."""
    known = wh.table("analysis", "derived_patients")
    recorded = conn.execute(
        select(*(func.coalesce(func.sum(known.c[c]), 0) for c in INPUTS.values()))
    ).one()
    fresh: set[str] = set()
    intact = True
    for name, expected in zip(INPUTS, recorded, strict=True):
        core = wh.table("core", name)
        keyed = core.c[PATIENT_KEY].is_not(None)
        if not pending:
            older = conn.execute(select(func.count()).where(keyed)).scalar_one()
            intact &= int(older) == int(expected)
            continue
        key = case((core.c.delivery_id.in_(pending), core.c[PATIENT_KEY]), else_=None)
        rows = select(key.label("key")).where(keyed).subquery()
        counts = conn.execute(select(rows.c.key, func.count()).group_by(rows.c.key)).all()
        fresh.update(k for k, _ in counts if k is not None)
        older = sum(n for k, n in counts if k is None)
        intact &= int(older) == int(expected)
    return fresh, intact


def recounted_patients(wh: Warehouse, conn: Connection, pending: list[str]) -> set[str]:
    """Patients with a row from ``pending`` deliveries or whose core row counts differ from
    ``analysis.derived_patients``: one aggregate per core table, fully outer-joined to it."""
    known = wh.table("analysis", "derived_patients")
    touched: set[str] = set()
    for table_name, counted in INPUTS.items():
        core = wh.table("core", table_name)
        fresh = case((core.c.delivery_id.in_(pending), 1), else_=0) if pending else literal(0)
        rows = (
            select(
                core.c[PATIENT_KEY].label("key"),
                func.count().label("n"),
                func.max(fresh).label("fresh"),
            )
            .where(core.c[PATIENT_KEY].is_not(None))
            .group_by(core.c[PATIENT_KEY])
            .subquery()
        )
        was = known.c[counted]
        changed = (
            (rows.c.fresh == 1)
            | (known.c[PATIENT_KEY].is_(None))  # a new patient
            | (rows.c.key.is_(None) & (was > 0))  # all of their rows are gone
            | (was != rows.c.n)
        )
        query = select(func.coalesce(rows.c.key, known.c[PATIENT_KEY])).select_from(
            rows.join(known, rows.c.key == known.c[PATIENT_KEY], full=True)
        )
        touched.update(conn.execute(query.where(changed)).scalars())
    return touched


def snapshot_episodes(wh: Warehouse, run_id: str) -> int:
    """Copy the current episodes under ``run_id`` into ``analysis.episodes`` (what a fit reads).

    In SQL, in (patient, series) order: the rows a full derive would have written.
    """
    episodes, current = wh.table("analysis", "episodes"), wh.table("analysis", "current_episodes")
    columns = list(EPISODE_COLUMNS)
    rows = select(literal(run_id, String(64)), *(current.c[c] for c in columns)).order_by(
        current.c[PATIENT_KEY], current.c["series_no"]
    )
    with wh.begin() as conn:
        conn.execute(delete(episodes).where(episodes.c.run_id == run_id))
        inserted = conn.execute(
            episodes.insert()
            .from_select(["run_id", *columns], rows)
            .execution_options(preserve_rowcount=True)  # else -1 on PostgreSQL
        )
    return int(inserted.rowcount or 0)


def current_totals(wh: Warehouse, conn: Connection) -> dict[str, int]:
    """Episodes, responders and events among the current episodes."""
    current = wh.table("analysis", "current_episodes")
    responders = func.sum(case((current.c.responded, 1), else_=0))
    row = conn.execute(
        select(func.count(), responders, func.sum(current.c.event)).select_from(current)
    ).one()
    return {"episodes": int(row[0]), "responders": int(row[1] or 0), "events": int(row[2] or 0)}


# --- the two ways of writing current episodes ----------------------------------------------


def _derive_all(wh: Warehouse, conn: Connection, run_id: str, outcome: OutcomeDefinition) -> int:
    frames = {
        name: wh.read("core", name, conn=conn, columns=DERIVE_COLUMNS[name]) for name in INPUTS
    }
    episodes = derive_episodes(*frames.values(), outcome)
    for name in ("current_episodes", "derived_patients"):
        conn.execute(delete(wh.table("analysis", name)))
    _write(wh, conn, run_id, episodes, frames)
    return len(episodes)


def _derive_patients(
    wh: Warehouse, conn: Connection, run_id: str, outcome: OutcomeDefinition, keys: list[str]
) -> int:
    """Replace the current episodes and row counts of ``keys`` with a fresh derive of them."""
    if not keys:
        return 0
    chosen = _key_table(wh, conn, keys)
    picked = select(chosen.c[PATIENT_KEY])
    frames = {
        name: wh.read(
            "core",
            name,
            wh.table("core", name).c[PATIENT_KEY].in_(picked),
            conn,
            DERIVE_COLUMNS[name],
        )
        for name in INPUTS
    }
    episodes = derive_episodes(*frames.values(), outcome)
    for name in ("current_episodes", "derived_patients"):
        table = wh.table("analysis", name)
        conn.execute(delete(table).where(table.c[PATIENT_KEY].in_(picked)))
    _write(wh, conn, run_id, episodes, frames)
    chosen.drop(conn)
    return len(episodes)


def _write(
    wh: Warehouse,
    conn: Connection,
    run_id: str,
    episodes: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
) -> None:
    """Insert the episodes and the patients' core row counts (what touched_patients compares)."""
    wh.insert_frame(conn, wh.table("analysis", "current_episodes"), episodes.assign(run_id=run_id))
    counts = pd.concat(
        {
            INPUTS[name]: frame[PATIENT_KEY].dropna().value_counts()
            for name, frame in frames.items()
        },
        axis=1,
    )
    counts = counts.fillna(0).astype("int64").rename_axis(PATIENT_KEY).reset_index()
    wh.insert_frame(conn, wh.table("analysis", "derived_patients"), counts.assign(run_id=run_id))


def _key_table(wh: Warehouse, conn: Connection, keys: list[str]) -> Table:
    """A temporary table of patient keys to join core against (one scan, not an IN list).

    Created inside the derive's transaction, so a failure rolls it back with the rest.
    """
    table = Table(
        "relief_touched_patients",
        MetaData(),
        Column(PATIENT_KEY, String(64), primary_key=True),
        prefixes=["TEMPORARY"],
    )
    table.create(conn)
    wh.insert_frame(conn, table, pd.DataFrame({PATIENT_KEY: keys}))
    return table


# --- what the derive keeps between nights ---------------------------------------------------


def _lock(wh: Warehouse, conn: Connection) -> None:
    """Serialise derives of the current episodes (a nightly and a CLI run at once)."""
    if wh.dialect == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(LOCK_ID)))
    else:  # a write, even of no row, takes SQLite's write lock for the transaction
        state = wh.table("analysis", "derive_state")
        conn.execute(update(state).where(false()).values(mode="full"))


def _state(wh: Warehouse, conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(wh.table("analysis", "derive_state"))).mappings().first()
    return dict(row) if row else None


def _set_state(wh: Warehouse, conn: Connection, run_id: str, mode: str, definition: str) -> None:
    state = wh.table("analysis", "derive_state")
    conn.execute(delete(state))
    conn.execute(state.insert().values(run_id=run_id, mode=mode, outcome=definition))


def _promoted(wh: Warehouse, conn: Connection) -> list[str]:
    manifest = wh.table("staging", "deliveries")
    query = select(manifest.c.delivery_id).where(manifest.c.status == "promoted")
    return sorted(conn.execute(query).scalars())


def _derived_by_others(wh: Warehouse, conn: Connection, run_id: str) -> set[str]:
    """Deliveries another run derived (this run's own count as new again on a re-run)."""
    derived = wh.table("analysis", "derived_deliveries")
    query = select(derived.c.delivery_id).where(derived.c.run_id != run_id)
    return set(conn.execute(query).scalars())


def _mark_derived(
    wh: Warehouse, conn: Connection, run_id: str, deliveries: list[str], *, replace_all: bool
) -> None:
    derived = wh.table("analysis", "derived_deliveries")
    if replace_all:
        conn.execute(delete(derived))
    elif deliveries:
        conn.execute(delete(derived).where(derived.c.delivery_id.in_(deliveries)))
    if deliveries:
        conn.execute(derived.insert(), [{"delivery_id": d, "run_id": run_id} for d in deliveries])


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
