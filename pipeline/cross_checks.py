"""Rules that need more than one table: a row can be fine alone and wrong in context.

Dose plausibility bounds per route (mg/kg per administration) are wide on purpose:
they catch unit errors (mg entered as µg, weight in lb), not clinical choices. Upper
bounds follow the Ketalar (ketamine HCl) US label: IV induction 1-4.5 mg/kg, IM
6.5-13 mg/kg; intranasal analgesic doses in trials stay ≤ 1.5 mg/kg (Shimonovich et al.
2016, Acad Emerg Med 23:1066), subcutaneous and oral ≤ 3 and ≤ 10 mg/kg.
See docs/validation.md.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from pipeline.schema import PATIENT_KEY, SOURCE_ROW
from pipeline.warehouse import Warehouse

DOSE_MG_PER_KG_BOUNDS: dict[str, tuple[float, float]] = {
    "IV": (0.05, 4.5),
    "IM": (0.1, 13.0),
    "IN": (0.1, 3.0),
    "SC": (0.05, 3.0),
    "PO": (0.1, 10.0),
}


def known_keys(wh: Warehouse) -> dict[str, set[str]]:
    """Patients and treatments already in core (earlier deliveries)."""
    patients = wh.table("core", "patients")
    treatments = wh.table("core", "treatments")
    with wh.engine.connect() as conn:
        return {
            "patients": set(conn.execute(select(patients.c[PATIENT_KEY])).scalars()),
            "treatments": set(conn.execute(select(treatments.c.treatment_id)).scalars()),
        }


def run(
    typed: dict[str, pd.DataFrame], single: pd.DataFrame, known: dict[str, set[str]]
) -> pd.DataFrame:
    """Cross-table failures, judged against rows that passed their own table's rules."""

    def passing(table: str) -> pd.DataFrame:
        frame = typed[table]
        bad = single.loc[single.source_table == table, SOURCE_ROW] if not single.empty else []
        return frame.loc[~frame[SOURCE_ROW].isin(bad)]

    patients = known["patients"] | set(passing("patients")[PATIENT_KEY].dropna())
    treatments = known["treatments"] | set(passing("treatments")["treatment_id"].dropna())
    found = []
    for table in ("treatments", "pain_assessments", "adverse_events"):
        frame = typed[table]
        unknown = frame[frame[PATIENT_KEY].notna() & ~frame[PATIENT_KEY].isin(patients)]
        found.append(
            _failures(
                table,
                unknown,
                "patient_id.known_patient",
                "patient_id",
                None,
                "patient is not in this or any earlier patients file",
            )
        )
    events = typed["adverse_events"]
    orphan = events[events.treatment_id.notna() & ~events.treatment_id.isin(treatments)]
    found.append(
        _failures(
            "adverse_events",
            orphan,
            "treatment_id.known_treatment",
            "treatment_id",
            "treatment_id",
            "adverse event refers to a treatment that is not in any treatments file",
        )
    )
    found.append(_dose_failures(typed["treatments"]))
    return pd.concat(found, ignore_index=True)


def _dose_failures(treatments: pd.DataFrame) -> pd.DataFrame:
    per_kg = treatments["dose_mg"] / treatments["weight_kg"]
    bounds = treatments["route"].map(DOSE_MG_PER_KG_BOUNDS)
    known = bounds.notna() & per_kg.notna()
    low = bounds[known].map(lambda b: b[0])
    high = bounds[known].map(lambda b: b[1])
    bad_index = per_kg[known][(per_kg[known] < low) | (per_kg[known] > high)].index
    bad = treatments.loc[bad_index].assign(mg_per_kg=per_kg[bad_index].round(3))
    frame = _failures("treatments", bad, "dose_mg.per_kg_for_route", "dose_mg", "dose_mg", "")
    if not frame.empty:
        frame["message"] = [
            f"{mg:g} mg/kg for route {route} is outside the plausible "
            f"{DOSE_MG_PER_KG_BOUNDS[route][0]}-{DOSE_MG_PER_KG_BOUNDS[route][1]} mg/kg; check units (mg, kg)"
            for mg, route in zip(bad["mg_per_kg"], bad["route"], strict=True)
        ]
    return frame


def _failures(
    table: str, rows: pd.DataFrame, rule: str, column: str, value_column: str | None, message: str
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            SOURCE_ROW: rows[SOURCE_ROW].astype(int).to_numpy(),
            "rule_id": f"{table}.{rule}",
            "column": column,
            "value": rows[value_column].astype(str).to_numpy() if value_column else None,
            "message": message,
            "source_table": table,
        }
    )
