"""Rules that need more than one table: a row can be fine alone and wrong in context.

They run as SQL where the data lives: staging (this delivery) against staging and
core, through SQLAlchemy Core with bound parameters only. Each rule is an
``INSERT INTO quarantine.rows ... SELECT`` that judges the rows of this delivery that
passed every earlier rule (the GX suites, whose failures ``pipeline.validate`` has
already inserted, and the cross rules before it in ``RULES``) against reference rows
that passed too: a treatment of a quarantined patient would otherwise reach core
without its patient. Nothing is pulled into Python; only counts come back.

Staging holds text. Rows compared here passed their type rules first, so the casts
cannot fail; instants are compared as day numbers, ``julianday`` on SQLite and epoch
seconds of a ``timestamptz`` (session time zone pinned to UTC for the transaction) on
PostgreSQL, so ``...+02:00`` and ``...Z`` compare correctly on both.

Dose plausibility bounds per route (mg/kg per administration) are wide on purpose:
they catch unit errors (mg entered as µg, weight in lb), not clinical choices. See
docs/validation.md for the sources of every bound.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import (
    TIMESTAMP,
    Connection,
    Float,
    Integer,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from pipeline.schema import NATURAL_KEYS, PATIENT_KEY
from pipeline.warehouse import Warehouse

# (lowest, highest) plausible mg/kg for one administration; sources in docs/validation.md.
DOSE_MG_PER_KG_BOUNDS: dict[str, tuple[float, float]] = {
    "IV": (0.05, 4.5),
    "IM": (0.1, 13.0),
    "IN": (0.1, 3.0),
    "SC": (0.05, 3.0),
    "PO": (0.1, 10.0),
}
DEATH_DATE = "death_date"  # optional patients column (landing contract extension)
ISO_DATE_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"


@dataclass(frozen=True)
class CrossRule:
    rule_id: str
    table: str
    column: str
    checks: str  # one line for docs and ``relief dq``


RULES: tuple[CrossRule, ...] = (
    CrossRule(
        "patients.death_date.is_iso_date",
        "patients",
        DEATH_DATE,
        "death_date, when given, is an ISO-8601 date",
    ),
    *(
        CrossRule(
            f"{t}.patient_id.known_patient",
            t,
            "patient_id",
            "patient is in this delivery's valid patients rows or in core",
        )
        for t in ("treatments", "pain_assessments", "adverse_events")
    ),
    CrossRule(
        "treatments.dose_mg.per_kg_for_route",
        "treatments",
        "dose_mg",
        "dose_mg / weight_kg lies within the plausible mg/kg bounds of the route",
    ),
    CrossRule(
        "treatments.administered_at.not_after_death",
        "treatments",
        "administered_at",
        "the administration date is not after the patient's death_date",
    ),
    CrossRule(
        "treatments.administered_at.no_overlap",
        "treatments",
        "administered_at",
        "an administration does not start before an earlier one of the patient has ended",
    ),
    CrossRule(
        "adverse_events.treatment_id.known_treatment",
        "adverse_events",
        "treatment_id",
        "treatment is in this delivery's valid treatments rows or in core",
    ),
)


def _text(value: str) -> ColumnElement:
    """A bound text parameter that both dialects type as text, even inside ``||``."""
    return cast(literal(value, Text), Text)


def _concat(*parts: ColumnElement | str) -> ColumnElement:
    out = None
    for part in parts:
        piece = _text(part) if isinstance(part, str) else func.coalesce(cast(part, Text), "")
        out = piece if out is None else out.op("||")(piece)
    return out


class CrossChecks:
    """The cross-table rules of one delivery, run inside the caller's transaction."""

    def __init__(
        self,
        wh: Warehouse,
        conn: Connection,
        delivery_id: str,
        run_id: str,
        source_files: dict[str, str] | None = None,
    ):
        self.wh, self.conn = wh, conn
        self.delivery_id, self.run_id = delivery_id, run_id
        self.source_files = (
            source_files if source_files is not None else _source_files(wh, conn, delivery_id)
        )
        self.dialect = wh.dialect
        self.quarantine = wh.table("quarantine", "rows")

    # -- building blocks ---------------------------------------------------------------
    def staging(self, table: str) -> Table:
        return self.wh.table("staging", table)

    def core(self, table: str) -> Table:
        return self.wh.table("core", table)

    def in_core(self, table: str, column: str, value: ColumnElement) -> ColumnElement:
        """Whether core ``table`` has a row whose ``column`` equals ``value`` (not NULL).

        A correlated EXISTS, so each of the delivery's values is one index lookup rather
        than a scan of core: when ``column`` alone is the table's natural key, core's
        ``natural_key`` holds the same text (``typing_rules.sql_natural_key``) and its
        index finds the row; the equality on ``column`` itself keeps the rule exact.
        """
        core = self.core(table)
        match = core.c[column] == value
        if NATURAL_KEYS[table] == (column,):
            match = and_(core.c.natural_key == cast(value, Text), match)
        return exists().where(match)

    def valid(self, table: str) -> Select:
        """This delivery's rows of ``table`` that no rule has quarantined so far."""
        s, q = self.staging(table), self.quarantine
        bad = select(q.c.source_row).where(
            q.c.delivery_id == self.delivery_id,
            q.c.source_table == table,
            q.c.source_row.is_not(None),
        )
        return select(s).where(s.c.delivery_id == self.delivery_id, s.c.source_row.not_in(bad))

    def days(self, value: ColumnElement) -> ColumnElement:
        """An ISO text or DateTime value as a (fractional) UTC day number."""
        if self.dialect == "sqlite":
            return func.julianday(value)
        return extract("epoch", cast(value, TIMESTAMP(timezone=True))) / 86400.0

    @staticmethod
    def number(value: ColumnElement) -> ColumnElement:
        return cast(func.nullif(value, ""), Float)

    def death_date_text(self, patients: Table | ColumnElement) -> ColumnElement | None:
        """death_date as text: its own column once the contract has it, else ``extra`` JSON."""
        if DEATH_DATE in patients.c:
            return cast(patients.c[DEATH_DATE], Text)
        if "extra" not in patients.c:
            return None
        path = "$." + DEATH_DATE
        if self.dialect == "sqlite":
            return cast(func.json_extract(patients.c.extra, literal(path, Text)), Text)
        return func.jsonb_extract_path_text(
            cast(patients.c.extra, JSONB), literal(DEATH_DATE, Text)
        )

    # -- running -----------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        """Insert every rule's failures into quarantine.rows; rows failed per rule id."""
        if self.dialect == "postgresql":
            self.conn.execute(select(func.set_config("TimeZone", "UTC", True)))
        for rule in RULES:
            rule_name = rule.rule_id.split(".", 1)[1].replace(".", "_")
            query = getattr(self, "rule_" + rule_name)(rule.table)
            if query is not None:
                self._insert(rule, query)
        q = self.quarantine
        counted = self.conn.execute(
            select(q.c.rule_id, func.count())
            .where(q.c.delivery_id == self.delivery_id, q.c.rule_id.in_([r.rule_id for r in RULES]))
            .group_by(q.c.rule_id)
        )
        found = dict(counted.all())
        return {rule.rule_id: int(found.get(rule.rule_id, 0)) for rule in RULES}

    def _insert(self, rule: CrossRule, failing: Select) -> None:
        """``failing`` selects (source_row, value, message) of this delivery's rows."""
        rows = failing.subquery()
        source_file = self.source_files.get(rule.table)
        q = self.quarantine
        columns = ("delivery_id", "source_table", "source_file", "source_row", "rule_id")
        columns += ("column_name", "value", "message", "run_id")
        insert = q.insert().from_select(
            list(columns),
            select(
                _text(self.delivery_id),
                _text(rule.table),
                cast(literal(source_file, Text), Text),
                rows.c.source_row,
                _text(rule.rule_id),
                _text(rule.column),
                cast(rows.c.value, Text),
                rows.c.message,
                _text(self.run_id),
            ),
        )
        self.conn.execute(insert)

    # -- the rules, in RULES order -----------------------------------------------------
    def rule_death_date_is_iso_date(self, table: str) -> Select | None:
        v = self.valid(table).subquery()
        death = self.death_date_text(v)
        if death is None:
            return None
        return select(
            v.c.source_row,
            death.label("value"),
            _concat(
                "death_date '",
                death,
                "' is not an ISO-8601 date (YYYY-MM-DD); correct it or leave it empty",
            ).label("message"),
        ).where(death.is_not(None), death != "", ~death.regexp_match(ISO_DATE_RE))

    def all_patients_known(self, table: str) -> bool:
        """Whether every patient ``table``'s rows refer to is in this delivery's valid
        patients rows or in core, judged on the distinct patients ingest recorded
        (``staging.patient_refs``): 100 000 keys instead of a scan of 10 M rows. False
        when ingest recorded none, so that the rule then checks every row.
        """
        refs = self.staging("patient_refs")
        mine = and_(refs.c.delivery_id == self.delivery_id, refs.c.source_table == table)
        if not self.conn.execute(select(exists().where(mine))).scalar():
            return False
        patients = self.valid("patients").subquery()
        unknown = select(refs.c[PATIENT_KEY]).where(
            mine,
            refs.c[PATIENT_KEY].not_in(
                select(patients.c[PATIENT_KEY]).where(patients.c[PATIENT_KEY].is_not(None))
            ),
            ~self.in_core("patients", PATIENT_KEY, refs.c[PATIENT_KEY]),
        )
        return not self.conn.execute(select(exists(unknown))).scalar()

    def rule_patient_id_known_patient(self, table: str) -> Select | None:
        if self.all_patients_known(table):
            return None
        v = self.valid(table).subquery()
        patients = self.valid("patients").subquery()
        staged = self.staging("patients")
        in_delivery = select(staged.c[PATIENT_KEY]).where(
            staged.c.delivery_id == self.delivery_id, staged.c[PATIENT_KEY].is_not(None)
        )
        message = case(
            (
                v.c[PATIENT_KEY].in_(in_delivery),
                _text(
                    "the patient's own row in the patients file was quarantined "
                    "(see its rule in relief dq); fix that row and re-deliver"
                ),
            ),
            else_=_text(
                "patient_id is in neither this delivery's patients file nor an earlier "
                "delivery; add the patient or correct patient_id"
            ),
        )
        return select(v.c.source_row, null().label("value"), message.label("message")).where(
            v.c[PATIENT_KEY].is_not(None),
            v.c[PATIENT_KEY].not_in(
                select(patients.c[PATIENT_KEY]).where(patients.c[PATIENT_KEY].is_not(None))
            ),
            ~self.in_core("patients", PATIENT_KEY, v.c[PATIENT_KEY]),
        )

    def rule_dose_mg_per_kg_for_route(self, table: str) -> Select:
        v = self.valid(table).subquery()
        per_kg = self.number(v.c.dose_mg) / func.nullif(self.number(v.c.weight_kg), 0.0)
        outside = or_(
            *(
                and_(v.c.route == route, or_(per_kg < low, per_kg > high))
                for route, (low, high) in DOSE_MG_PER_KG_BOUNDS.items()
            )
        )
        bounds = case(
            *(
                (v.c.route == route, _text(f"{low:g}–{high:g}"))
                for route, (low, high) in DOSE_MG_PER_KG_BOUNDS.items()
            ),
            else_=_text("?"),
        )
        message = _concat(
            "dose_mg ",
            v.c.dose_mg,
            " mg / weight_kg ",
            v.c.weight_kg,
            " kg is outside the plausible ",
            bounds,
            " mg/kg for route ",
            v.c.route,
            "; check the units (mg not µg, kg not lb) and the route",
        )
        return select(v.c.source_row, v.c.dose_mg.label("value"), message.label("message")).where(
            per_kg.is_not(None), outside
        )

    def rule_administered_at_not_after_death(self, table: str) -> Select | None:
        valid_patients = self.valid("patients").subquery()
        staged_death = self.death_date_text(valid_patients)
        if staged_death is None:
            return None
        core = self.core("patients")
        parts = [
            select(
                valid_patients.c[PATIENT_KEY].label("patient_key"),
                func.substr(staged_death, 1, 10).label("death"),
            ).where(staged_death.regexp_match(ISO_DATE_RE))
        ]
        if DEATH_DATE in core.c:  # earlier deliveries' deaths, unless re-delivered now
            parts.append(
                select(
                    core.c[PATIENT_KEY], func.substr(cast(core.c[DEATH_DATE], Text), 1, 10)
                ).where(
                    core.c[DEATH_DATE].is_not(None),
                    core.c[PATIENT_KEY].not_in(select(parts[0].subquery().c.patient_key)),
                )
            )
        deaths = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        v = self.valid(table).subquery()
        # Dates as written (local calendar days): a treatment on the day of death is allowed.
        given = func.substr(v.c.administered_at, 1, 10)
        message = _concat(
            "administered_at '",
            v.c.administered_at,
            "' is after the patient's death_date ",
            deaths.c.death,
            "; check the treatment date, patient_id and death_date",
        )
        return (
            select(v.c.source_row, v.c.administered_at.label("value"), message.label("message"))
            .join_from(v, deaths, deaths.c.patient_key == v.c[PATIENT_KEY])
            .where(given > deaths.c.death)
        )

    def rule_administered_at_no_overlap(self, table: str) -> Select:
        v = self.valid(table).subquery()
        core = self.core(table)
        new_ids = select(v.c.treatment_id).where(v.c.treatment_id.is_not(None))
        # Only the delivery's patients have rows to judge; a window over any other
        # patient's history would be computed and thrown away.
        new_patients = select(v.c[PATIENT_KEY]).where(
            v.c[PATIENT_KEY].is_not(None), v.c.administered_at.is_not(None)
        )
        staged = select(
            v.c[PATIENT_KEY].label("patient_key"),
            v.c.treatment_id,
            self.days(v.c.administered_at).label("start"),
            (
                self.days(v.c.administered_at)
                + func.coalesce(self.number(v.c.duration_min), 0.0) / 1440.0
            ).label("stop"),
            v.c.source_row,
            cast(v.c.administered_at, Text).label("value"),
        ).where(v.c[PATIENT_KEY].is_not(None), v.c.administered_at.is_not(None))
        earlier = select(
            core.c[PATIENT_KEY],
            core.c.treatment_id,
            self.days(core.c.administered_at),
            self.days(core.c.administered_at)
            + func.coalesce(cast(core.c.duration_min, Float), 0.0) / 1440.0,
            cast(null(), Integer),
            cast(null(), Text),
        ).where(  # a re-delivered treatment replaces its core row: not its own predecessor
            core.c[PATIENT_KEY].in_(new_patients),
            core.c.administered_at.is_not(None),
            core.c.treatment_id.not_in(new_ids),
        )
        both = union_all(staged, earlier).subquery()
        order = (both.c.start, both.c.treatment_id)
        windowed = select(
            both,
            func.max(both.c.stop)
            .over(partition_by=both.c.patient_key, order_by=order, rows=(None, -1))
            .label("busy_until"),
            func.lag(both.c.treatment_id)
            .over(partition_by=both.c.patient_key, order_by=order)
            .label("previous"),
        ).subquery()
        message = _concat(
            "administered_at '",
            windowed.c.value,
            "' starts before an earlier administration of this patient has ended "
            "(administered_at + duration_min; previous: ",
            windowed.c.previous,
            "); check both times and durations",
        )
        return select(windowed.c.source_row, windowed.c.value, message.label("message")).where(
            windowed.c.source_row.is_not(None), windowed.c.busy_until > windowed.c.start
        )

    def rule_treatment_id_known_treatment(self, table: str) -> Select:
        v = self.valid(table).subquery()
        treatments = self.valid("treatments").subquery()
        message = _text(
            "treatment_id is in neither this delivery's valid treatments rows nor an earlier "
            "delivery; correct treatment_id or deliver (or fix) the treatment"
        )
        return select(
            v.c.source_row, v.c.treatment_id.label("value"), message.label("message")
        ).where(
            v.c.treatment_id.is_not(None),
            v.c.treatment_id.not_in(
                select(treatments.c.treatment_id).where(treatments.c.treatment_id.is_not(None))
            ),
            ~self.in_core("treatments", "treatment_id", v.c.treatment_id),
        )


def _source_files(wh: Warehouse, conn: Connection, delivery_id: str) -> dict[str, str]:
    """Each table's landing file name, from the manifest's ``files`` JSON."""
    manifest = wh.table("staging", "deliveries")
    files = conn.execute(
        select(manifest.c.files).where(manifest.c.delivery_id == delivery_id)
    ).scalar_one_or_none()
    return {t: f.get("file") for t, f in json.loads(files).items()} if files else {}


def run(
    wh: Warehouse,
    conn: Connection,
    delivery_id: str,
    run_id: str,
    source_files: dict[str, str] | None = None,
) -> dict[str, int]:
    """Run every cross-table rule for one delivery inside ``conn``'s transaction.

    Failures go straight into quarantine.rows; returns rows failed per rule id
    (every rule in RULES, 0 when it passed or does not apply, e.g. no death_date).
    ``source_files`` ({table: landing file name}, for quarantine rows) defaults to the
    manifest's entry for the delivery.
    """
    return CrossChecks(wh, conn, delivery_id, run_id, source_files).run()
