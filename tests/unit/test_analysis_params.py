"""Analysis parameters: defaults, typed values, and errors that name the field."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline import analysis_params as ap
from pipeline.config import ModelSettings, OutcomeDefinition
from pipeline.schema import ROUTES
from pipeline.strata import KM_STRATA


def test_defaults_mirror_config_and_strata():
    request = ap.parse_request({})
    assert ap.KM_STRATA == KM_STRATA
    assert ModelSettings().covariates == ap.DEFAULT_COVARIATES
    assert request.outcome == OutcomeDefinition()
    assert request.models == ModelSettings()
    assert request.analyses == ap.MODELS


def test_choices_become_typed_values():
    request = ap.parse_request(
        {
            "date_from": "2024-01-01",
            "date_to": "2024-12-31",
            "routes": ["IV", "mixed"],
            "conditions": ["CRPS", "fibromyalgia"],
            "sites": ["site-01"],
            "age_min": 18,
            "age_max": 65,
            "min_follow_up_days": 14,
            "response_threshold": "2 points",
            "series_gap_days": 3,
            "baseline_window_days": 7,
            "strata": ["route"],
            "covariates": ["route", "age"],
            "horizon_days": 60,
            "models": ["km", "cox"],
            "ties": "breslow",
        }
    )
    c = request.cohort
    assert (c.date_from, c.date_to) == (date(2024, 1, 1), date(2024, 12, 31))
    assert c.routes == ("IV", "mixed") and c.sites == ("site-01",)
    assert (c.age_min, c.age_max, c.min_follow_up_days) == (18, 65, 14.0)
    assert request.outcome.response_rule == "absolute"
    assert request.outcome.absolute_threshold == 2.0 and request.outcome.series_gap_days == 3
    assert request.models.km_groups == ("route",) and request.models.ties == "breslow"
    assert request.models.covariates == ("route", "age") and request.models.horizon_days == 60
    assert "rmst" not in request.analyses and "cox" in request.analyses
    assert "rmst" not in request.parameters()["models"]["analyses"]
    assert request.parameters()["cohort"]["date_from"] == "2024-01-01"


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"routes": ["IV", "intrathecal"]}, "routes"),
        ({"conditions": ["x'); DROP TABLE core__patients; --"]}, "conditions"),
        ({"sites": ["a' OR '1'='1"]}, "sites"),
        ({"date_from": "2024-02-30"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"date_from": "2024-05-01", "date_to": "2024-04-01"}, "date_to"),
        ({"age_min": -1}, "age_min"),
        ({"age_min": 70, "age_max": 20}, "age_max"),
        ({"min_follow_up_days": -3}, "min_follow_up_days"),
        ({"response_threshold": "40%"}, "response_threshold"),
        ({"series_gap_days": "7; DROP"}, "series_gap_days"),
        ({"baseline_window_days": 0}, "baseline_window_days"),
        ({"strata": ["dose_band", "shoe_size"]}, "strata"),
        ({"covariates": []}, "covariates"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"models": ["km", "deep_learning"]}, "models"),
        ({"ties": "exact"}, "ties"),
        ({"sql": "select 1"}, "sql"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(conf, field):
    with pytest.raises(ap.AnalysisParamsError) as error:
        ap.parse_request(conf)
    assert error.value.field == field
    assert repr(field) in str(error.value)


def test_airflow_params_use_the_same_schemas():
    from airflow.sdk import Param

    for name, (default, schema, _section, _description) in ap.PARAM_SCHEMAS.items():
        Param(default, **schema).resolve()  # every default satisfies its own schema
        assert name in ap.json_schema()["properties"]
    assert set(ap.PARAM_SCHEMAS["routes"][1]["items"]["enum"]) == {*ROUTES, "mixed"}
