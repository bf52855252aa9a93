"""OMOP CDM v5.4 -> landing contract, read through SQLAlchemy from a source database.

The cohort is every person with a ketamine drug_exposure: the RxNorm ingredient
(``concept.concept_code = '6130'``) and all its descendants via ``concept_ancestor``
(clinical drugs, branded drugs, packs). Field mapping: docs/sources.md.
Queries use SQLAlchemy constructs (quoted identifiers, bound parameters), never SQL
built from strings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, column, create_engine, or_, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pipeline.sources import codes
from pipeline.sources.landing import DeliveryError, RawTable

TABLES: dict[str, tuple[str, ...]] = {
    "concept": ("concept_id", "concept_code", "vocabulary_id"),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
    "person": ("person_id", "gender_concept_id", "year_of_birth", "care_site_id"),
    "drug_exposure": (
        "drug_exposure_id",
        "person_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_start_datetime",
        "drug_exposure_end_datetime",
        "quantity",
        "route_concept_id",
        "route_source_value",
        "dose_unit_source_value",
    ),
    "drug_strength": (
        "drug_concept_id",
        "ingredient_concept_id",
        "amount_value",
        "amount_unit_concept_id",
        "numerator_value",
        "numerator_unit_concept_id",
        "denominator_value",
        "denominator_unit_concept_id",
    ),
    "measurement": (
        "measurement_id",
        "person_id",
        "measurement_concept_id",
        "measurement_date",
        "measurement_datetime",
        "value_as_number",
        "unit_concept_id",
    ),
    "observation": (
        "observation_id",
        "person_id",
        "observation_concept_id",
        "observation_date",
        "observation_datetime",
        "value_as_number",
    ),
    "condition_occurrence": (
        "condition_occurrence_id",
        "person_id",
        "condition_source_value",
        "condition_start_date",
        "condition_status_concept_id",
    ),
}


def read_omop(url: str, schema: str | None = None) -> dict[str, RawTable]:
    """Extract patients, treatments and pain assessments from an OMOP CDM database."""
    where = Path(make_url(url).render_as_string(hide_password=True))
    engine = create_engine(url)
    try:
        frames = _extract(engine, schema, where)
    except SQLAlchemyError as exc:
        problem = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        raise DeliveryError(where, f"cannot read the OMOP CDM tables: {problem}") from exc
    finally:
        engine.dispose()
    return {name: RawTable.from_frame(name, where / name, frame) for name, frame in frames.items()}


def _t(name: str, schema: str | None):
    return table(name, *[column(c) for c in TABLES[name]], schema=schema)


def _extract(engine: Engine, schema: str | None, where: Path) -> dict[str, pd.DataFrame]:
    concept, ancestor = _t("concept", schema), _t("concept_ancestor", schema)
    person, drug = _t("person", schema), _t("drug_exposure", schema)
    strength, meas = _t("drug_strength", schema), _t("measurement", schema)
    obs, cond = _t("observation", schema), _t("condition_occurrence", schema)
    ingredient = select(concept.c.concept_id).where(
        concept.c.vocabulary_id == "RxNorm", concept.c.concept_code == codes.KETAMINE_RXNORM
    )
    ketamine = select(ancestor.c.descendant_concept_id).where(
        ancestor.c.ancestor_concept_id.in_(ingredient)
    )
    drug_ids = or_(drug.c.drug_concept_id.in_(ketamine), drug.c.drug_concept_id.in_(ingredient))
    cohort = select(drug.c.person_id).where(drug_ids)

    def loinc(codes_: tuple[str, ...]):
        return select(concept.c.concept_id).where(
            concept.c.vocabulary_id == "LOINC", concept.c.concept_code.in_(codes_)
        )

    with engine.connect() as conn:

        def read(query) -> pd.DataFrame:
            return pd.read_sql(query, conn, dtype=object)

        people = read(select(person).where(person.c.person_id.in_(cohort)))
        exposures = read(select(drug).where(drug_ids).order_by(drug.c.drug_exposure_id))
        strengths = read(select(strength).where(strength.c.ingredient_concept_id.in_(ingredient)))
        pain_concepts = set(read(loinc(codes.PAIN_LOINC))["concept_id"].astype(str))
        measurements = read(
            select(meas)
            .where(
                meas.c.person_id.in_(cohort),
                meas.c.measurement_concept_id.in_(loinc(codes.PAIN_LOINC + codes.WEIGHT_LOINC)),
            )
            .order_by(meas.c.measurement_id)
        )
        observations = read(
            select(obs)
            .where(
                obs.c.person_id.in_(cohort),
                obs.c.observation_concept_id.in_(loinc(codes.PAIN_LOINC)),
            )
            .order_by(obs.c.observation_id)
        )
        conditions = read(
            select(cond)
            .where(cond.c.person_id.in_(cohort))
            .order_by(cond.c.condition_start_date, cond.c.condition_occurrence_id)
        )
    if exposures.empty:
        raise DeliveryError(where, "no ketamine drug_exposure rows (RxNorm 6130 and descendants)")
    is_pain = measurements["measurement_concept_id"].astype(str).isin(pain_concepts)
    return {
        "patients": _patients(people, conditions),
        "treatments": _treatments(exposures, strengths, measurements.loc[~is_pain]),
        "pain_assessments": _pain(measurements.loc[is_pain], observations),
    }


def _text(values: pd.Series) -> pd.Series:
    """Ids and codes as text; drivers may hand integer columns with NULLs back as floats."""

    def one(v: object) -> str | None:
        if v is None or pd.isna(v):
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return values.map(one).astype(object)


def _when(date_time: pd.Series, date: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(date_time, errors="coerce")
    return stamps.fillna(pd.to_datetime(date, errors="coerce"))


def _iso(stamps: pd.Series) -> pd.Series:
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object).where(stamps.notna(), None)


def _number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _fmt(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if pd.isna(v) else f"{v:g}")


def _patients(people: pd.DataFrame, conditions: pd.DataFrame) -> pd.DataFrame:
    conditions = conditions.assign(
        person_id=_text(conditions["person_id"]),
        code=_text(conditions["condition_source_value"]),
        primary=_text(conditions["condition_status_concept_id"]) == codes.OMOP_PRIMARY_DIAGNOSIS,
    ).dropna(subset=["code"])
    primary = conditions.sort_values("primary", ascending=False, kind="stable")
    primary = primary.drop_duplicates("person_id").set_index("person_id")["code"]
    rest = conditions.merge(primary.rename("primary_code"), left_on="person_id", right_index=True)
    rest = rest.loc[rest["code"] != rest["primary_code"]]
    comorbid = rest.groupby("person_id")["code"].agg(lambda c: ";".join(sorted(set(c))))
    ids = _text(people["person_id"])
    return pd.DataFrame(
        {
            "patient_id": ids,
            "sex": _text(people["gender_concept_id"]).map(codes.OMOP_SEX).fillna("X"),
            "birth_year": _text(people["year_of_birth"]),
            "primary_condition": ids.map(primary).map(codes.indication),
            "comorbidities": ids.map(comorbid).fillna(""),
            "site_id": _text(people["care_site_id"]),
        }
    )


def _treatments(
    exposures: pd.DataFrame, strengths: pd.DataFrame, weights: pd.DataFrame
) -> pd.DataFrame:
    start = _when(exposures["drug_exposure_start_datetime"], exposures["drug_exposure_start_date"])
    end = pd.to_datetime(exposures["drug_exposure_end_datetime"], errors="coerce")
    route = _text(exposures["route_concept_id"]).map(codes.OMOP_ROUTE)
    route = route.fillna(_text(exposures["route_source_value"]))
    out = pd.DataFrame(
        {
            "treatment_id": _text(exposures["drug_exposure_id"]),
            "patient_id": _text(exposures["person_id"]),
            "administered_at": _iso(start),
            "duration_min": _fmt((end - start).dt.total_seconds() / 60),
            "route": route,
            "dose_mg": _fmt(_dose_mg(exposures, strengths)),
            "_start": start,
        }
    )
    return _with_weight(out, weights).drop(columns="_start")


def _dose_mg(exposures: pd.DataFrame, strengths: pd.DataFrame) -> pd.Series:
    """quantity x strength: amount (mg per unit) or concentration (mg per mL x mL)."""
    s = strengths.assign(drug_concept_id=_text(strengths["drug_concept_id"]))
    s = s.drop_duplicates("drug_concept_id").set_index("drug_concept_id")
    concept = _text(exposures["drug_concept_id"])
    quantity = _number(exposures["quantity"])

    def col(name: str) -> pd.Series:
        return concept.map(s[name]) if name in s else pd.Series(np.nan, index=concept.index)

    amount = _number(col("amount_value"))
    amount_mg = _text(col("amount_unit_concept_id")) == codes.OMOP_UNIT_MG
    per_ml = _number(col("numerator_value")) / _number(col("denominator_value")).fillna(1.0)
    conc_mg_ml = (_text(col("numerator_unit_concept_id")) == codes.OMOP_UNIT_MG) & (
        _text(col("denominator_unit_concept_id")) == codes.OMOP_UNIT_ML
    )
    unit = _text(exposures["dose_unit_source_value"]).str.lower()
    dose = pd.Series(np.nan, index=concept.index)
    dose = dose.where(~(unit == "mg"), quantity)
    dose = dose.where(~conc_mg_ml, quantity * per_ml)
    return dose.where(~amount_mg, quantity * amount)


def _with_weight(treatments: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Body weight: the last measurement at or before the administration, else the next one."""
    if weights.empty:
        return treatments.assign(weight_kg=None)
    kg = _number(weights["value_as_number"])
    kg = kg.where(_text(weights["unit_concept_id"]) != codes.OMOP_UNIT_POUND, kg * 0.45359237)
    w = pd.DataFrame(
        {
            "patient_id": _text(weights["person_id"]),
            "_at": _when(weights["measurement_datetime"], weights["measurement_date"]),
            "kg": kg,
        }
    ).dropna(subset=["_at", "kg"])
    left = treatments.reset_index().dropna(subset=["_start"]).sort_values("_start")
    found = {}
    for direction in ("backward", "forward"):
        merged = pd.merge_asof(
            left,
            w.sort_values("_at"),
            left_on="_start",
            right_on="_at",
            by="patient_id",
            direction=direction,
        )
        found[direction] = merged.set_index("index")["kg"]
    kg_at = found["backward"].fillna(found["forward"]).reindex(treatments.index)
    return treatments.assign(weight_kg=_fmt(kg_at))


def _pain(measurements: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    m = pd.DataFrame(
        {
            "assessment_id": "m" + _text(measurements["measurement_id"]),
            "patient_id": _text(measurements["person_id"]),
            "assessed_at": _iso(
                _when(measurements["measurement_datetime"], measurements["measurement_date"])
            ),
            "pain_score": _fmt(_number(measurements["value_as_number"])),
        }
    )
    o = pd.DataFrame(
        {
            "assessment_id": "o" + _text(observations["observation_id"]),
            "patient_id": _text(observations["person_id"]),
            "assessed_at": _iso(
                _when(observations["observation_datetime"], observations["observation_date"])
            ),
            "pain_score": _fmt(_number(observations["value_as_number"])),
        }
    )
    return pd.concat([m, o], ignore_index=True)
