"""What an analyst may choose for one ``relief_analysis`` run, as JSON schema and as types.

``PARAM_SCHEMAS`` is the single source of the choices: the DAG turns each entry into an
Airflow ``Param`` (so the API and the UI reject bad values at trigger time, naming the
param), and ``parse_request`` validates a whole conf against the same schemas plus the
cross-field rules JSON schema cannot express (date and age ranges the right way round),
returning a typed ``AnalysisRequest``. Every value ends as a typed Python value (dates,
numbers, tuples of known names); nothing is ever pasted into SQL.

The response thresholds are IMMPACT's 30 % ("moderately important") and 50 %
("substantial") reductions and the absolute 2-point drop (Dworkin et al., J Pain
2008;9:105-121).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pipeline.schema import ANALYSES, ROUTES

if TYPE_CHECKING:
    from pipeline.config import ModelSettings, OutcomeDefinition

# The DAG processor imports this module to build the Params, so it imports nothing heavy
# (pipeline.config pulls in pandas via pipeline.strata). These mirror strata.KM_STRATA
# and the OutcomeDefinition / ModelSettings defaults; a unit test keeps them equal.
KM_STRATA: tuple[str, ...] = (
    "route",
    "pattern",
    "dose_band",
    "infusion_band",
    "primary_condition",
    "comorbidity_band",
    "severity_band",
)
DEFAULT_COVARIATES: tuple[str, ...] = (
    "route",
    "is_series",
    "dose_mg_per_kg",
    "infusion_hours",
    "n_comorbidities",
    "baseline_score",
)
DEFAULT_SERIES_GAP_DAYS = 7.0
DEFAULT_BASELINE_WINDOW_DAYS = 14.0
DEFAULT_HORIZON_DAYS = 90.0

# Conditions and site ids are matched as values, never as SQL; the pattern keeps them to
# the characters codes and site ids actually use so the UI shows a clear error early.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

RESPONSE_RULES: dict[str, dict[str, Any]] = {
    "30%": {"response_rule": "relative", "response_threshold": 0.30},
    "50%": {"response_rule": "relative", "response_threshold": 0.50},
    "2 points": {"response_rule": "absolute", "absolute_threshold": 2.0},
}
COVARIATES: tuple[str, ...] = (*DEFAULT_COVARIATES, "age")

MODELS: tuple[str, ...] = ANALYSES  # what an analyst can switch on


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": ["null", schema["type"]]}


def _names(enum: tuple[str, ...] | None = None) -> dict[str, Any]:
    item = (
        {"type": "string", "enum": list(enum)}
        if enum
        else {"type": "string", "pattern": NAME_PATTERN}
    )
    return {"type": "array", "items": item, "uniqueItems": True, "maxItems": 200}


# name -> (default, JSON schema, UI section, description)
PARAM_SCHEMAS: dict[str, tuple[Any, dict[str, Any], str, str]] = {
    "date_from": (
        None,
        _nullable({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
        "Cohort",
        "First series start date included (YYYY-MM-DD); empty = no lower bound",
    ),
    "date_to": (
        None,
        _nullable({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
        "Cohort",
        "Last series start date included (YYYY-MM-DD); empty = no upper bound",
    ),
    "routes": ([], _names((*ROUTES, "mixed")), "Cohort", "Routes to keep; empty = all"),
    "conditions": ([], _names(), "Cohort", "Primary conditions to keep; empty = all"),
    "sites": ([], _names(), "Cohort", "Site ids to keep; empty = all"),
    "age_min": (
        None,
        _nullable({"type": "integer", "minimum": 0, "maximum": 120}),
        "Cohort",
        "Youngest age at series start; empty = no lower bound",
    ),
    "age_max": (
        None,
        _nullable({"type": "integer", "minimum": 0, "maximum": 120}),
        "Cohort",
        "Oldest age at series start; empty = no upper bound",
    ),
    "min_follow_up_days": (
        0,
        {"type": "number", "minimum": 0, "maximum": 3650},
        "Cohort",
        "Keep episodes whose last follow-up pain assessment is at least this many days "
        "after the series ended",
    ),
    "response_threshold": (
        "30%",
        {"type": "string", "enum": list(RESPONSE_RULES)},
        "Outcome",
        "What counts as relief: a 30 % or 50 % reduction from baseline, or a 2-point drop",
    ),
    "series_gap_days": (
        DEFAULT_SERIES_GAP_DAYS,
        {"type": "number", "minimum": 0, "maximum": 365},
        "Outcome",
        "Administrations at most this many days apart form one series",
    ),
    "baseline_window_days": (
        DEFAULT_BASELINE_WINDOW_DAYS,
        {"type": "number", "exclusiveMinimum": 0, "maximum": 365},
        "Outcome",
        "Baseline = last score within this many days before the series",
    ),
    "strata": (
        list(KM_STRATA),
        _names(KM_STRATA),
        "Models",
        "Groupings for stratified Kaplan-Meier curves and tables",
    ),
    "covariates": (
        list(DEFAULT_COVARIATES),
        {**_names(COVARIATES), "minItems": 1},
        "Models",
        "Covariates of the Cox model",
    ),
    "horizon_days": (
        DEFAULT_HORIZON_DAYS,
        {"type": "number", "exclusiveMinimum": 0, "maximum": 3650},
        "Models",
        "Restricted mean survival time horizon, in days",
    ),
    "models": (
        list(MODELS),
        {**_names(MODELS), "minItems": 1},
        "Models",
        "Analyses to publish",
    ),
    "ties": (
        "efron",
        {"type": "string", "enum": ["efron", "breslow"]},
        "Models",
        "Tie handling in the Cox partial likelihood",
    ),
}


class AnalysisParamsError(ValueError):
    """A parameter of an analysis run is invalid; ``field`` names it.

    A ValueError like ``config.ConfigError``: the CLI and the DAG edge report it as one line.
    """

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"analysis parameter {field_name!r}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class CohortFilter:
    """Which episodes enter the analysis; every bound is optional (``None``/empty = all)."""

    date_from: date | None = None
    date_to: date | None = None
    routes: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    age_min: int | None = None
    age_max: int | None = None
    min_follow_up_days: float = 0.0


@dataclass(frozen=True)
class AnalysisRequest:
    """A validated analysis: cohort, outcome definition, model settings and model choice."""

    cohort: CohortFilter
    outcome: OutcomeDefinition
    models: ModelSettings  # ``models.analyses`` holds the analyst's model choice

    @property
    def analyses(self) -> tuple[str, ...]:
        return self.models.analyses

    def parameters(self) -> dict[str, Any]:
        """JSON-able record of the request, for ``model_runs.parameters``."""
        return json.loads(json.dumps(asdict(self), default=str))


def json_schema() -> dict[str, Any]:
    """The whole conf as one JSON schema object (docs, API clients, ``parse_request``)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: spec[1] for name, spec in PARAM_SCHEMAS.items()},
    }


def defaults() -> dict[str, Any]:
    return {name: spec[0] for name, spec in PARAM_SCHEMAS.items()}


def parse_request(conf: dict[str, Any] | None) -> AnalysisRequest:
    """Validate a DAG-run conf (or params) and build the typed request.

    Raises AnalysisParamsError naming the first bad field.
    """
    from jsonschema import Draft202012Validator, FormatChecker

    from pipeline.config import ConfigError, ModelSettings, OutcomeDefinition

    values = {**defaults(), **(conf or {})}
    validator = Draft202012Validator(json_schema(), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        if error.validator == "additionalProperties":
            unknown = sorted(set(values) - set(PARAM_SCHEMAS))
            raise AnalysisParamsError(
                unknown[0] if unknown else "?",
                f"unknown parameter; allowed: {', '.join(PARAM_SCHEMAS)}",
            )
        name = str(error.absolute_path[0]) if error.absolute_path else "?"
        raise AnalysisParamsError(name, error.message)
    cohort = CohortFilter(
        date_from=_date(values, "date_from"),
        date_to=_date(values, "date_to"),
        routes=tuple(values["routes"]),
        conditions=tuple(values["conditions"]),
        sites=tuple(values["sites"]),
        age_min=values["age_min"],
        age_max=values["age_max"],
        min_follow_up_days=float(values["min_follow_up_days"]),
    )
    if cohort.date_from and cohort.date_to and cohort.date_from > cohort.date_to:
        raise AnalysisParamsError("date_to", "is before date_from")
    if (
        cohort.age_min is not None
        and cohort.age_max is not None
        and cohort.age_min > cohort.age_max
    ):
        raise AnalysisParamsError("age_max", "is below age_min")
    try:
        outcome = OutcomeDefinition(
            series_gap_days=float(values["series_gap_days"]),
            baseline_window_days=float(values["baseline_window_days"]),
            **RESPONSE_RULES[values["response_threshold"]],
        )
        models = ModelSettings(
            ties=values["ties"],
            horizon_days=float(values["horizon_days"]),
            covariates=tuple(values["covariates"]),
            km_groups=tuple(values["strata"]),
            analyses=tuple(m for m in MODELS if m in values["models"]),
        )
    except ConfigError as exc:  # pragma: no cover - the schema catches these first
        raise AnalysisParamsError("outcome/models", str(exc)) from exc
    return AnalysisRequest(cohort=cohort, outcome=outcome, models=models)


def _date(values: dict[str, Any], name: str) -> date | None:
    value = values[name]
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise AnalysisParamsError(name, f"{value!r} is not a date (YYYY-MM-DD)") from exc
