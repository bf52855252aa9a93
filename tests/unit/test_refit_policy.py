"""The nightly refit policy (runs.decide_refit) and its settings, hand-made histories."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from pipeline.config import (
    ConfigError,
    ModelSettings,
    OutcomeDefinition,
    RefitPolicy,
    Settings,
    from_env,
)
from pipeline.runs import LastFit, decide_refit, fitted_settings

NOW = datetime(2026, 3, 10, 2, 0)
SETTINGS = fitted_settings(Settings())


def fit(new: int = 10, episodes: int = 1000, days: float = 1.0, **parameters) -> LastFit:
    return LastFit(
        run_id="n-fit",
        finished_at=NOW - timedelta(days=days),
        parameters={**SETTINGS, **parameters},
        episodes=episodes,
        new_episodes=new,
        report_path="/reports/n-fit/report.html",
    )


def test_a_small_recent_increment_keeps_the_last_fit():
    decision = decide_refit(RefitPolicy(), SETTINGS, fit(new=10, days=1), NOW)
    assert not decision.refit
    assert decision.last_fit == "n-fit" and decision.report_path == "/reports/n-fit/report.html"
    assert "10 episodes new or re-derived since fit n-fit (1.0% of its 1000" in decision.reason
    assert "stay current" in decision.reason


@pytest.mark.parametrize(
    ("new", "refit"),
    [(0, False), (50, False), (51, True), (400, True)],
    ids=["none", "exactly 5 %", "just over", "40 %"],
)
def test_refit_when_new_episodes_exceed_the_share(new, refit):
    decision = decide_refit(RefitPolicy(min_new_share=0.05), SETTINGS, fit(new=new), NOW)
    assert decision.refit is refit
    if refit:
        assert (
            f"{new} episodes new or re-derived" in decision.reason and "> 5.0%" in decision.reason
        )


@pytest.mark.parametrize(("days", "refit"), [(6.9, False), (7.0, False), (7.01, True), (30, True)])
def test_refit_when_the_last_fit_is_older_than_max_age(days, refit):
    decision = decide_refit(RefitPolicy(max_age_days=7), SETTINGS, fit(new=0, days=days), NOW)
    assert decision.refit is refit
    if refit:
        assert "days old (> 7)" in decision.reason


def test_no_earlier_fit_or_a_request_refits():
    assert decide_refit(RefitPolicy(), SETTINGS, None, NOW).reason == "no earlier fit"
    asked = decide_refit(RefitPolicy(), SETTINGS, fit(new=0), NOW, requested=True)
    assert asked.refit and asked.reason == "refit requested"


@pytest.mark.parametrize(
    ("changed", "name"),
    [
        (replace(Settings(), outcome=OutcomeDefinition(response_threshold=0.5)), "outcome"),
        (replace(Settings(), models=ModelSettings(horizon_days=30)), "models"),
        (replace(Settings(), models=ModelSettings(analyses=("km", "cox"))), "models"),
        (replace(Settings(), min_cell_count=5), "min cell count"),
    ],
)
def test_changed_fit_settings_refit(changed, name):
    decision = decide_refit(RefitPolicy(), fitted_settings(changed), fit(new=0), NOW)
    assert decision.refit and decision.reason == f"{name} settings changed since fit n-fit"


def test_settings_that_do_not_change_results_do_not_refit():
    other = replace(Settings(), warehouse_url="sqlite:///elsewhere.db", full_derive=True)
    other = replace(other, refit=RefitPolicy(min_new_share=0.2))
    assert fitted_settings(other) == SETTINGS
    assert not decide_refit(other.refit, fitted_settings(other), fit(new=0), NOW).refit


def test_recorded_parameters_compare_equal_after_a_json_round_trip():
    import json

    recorded = json.loads(json.dumps(Settings().parameters(), sort_keys=True, default=str))
    last = replace(fit(new=0), parameters=recorded)
    assert not decide_refit(RefitPolicy(), SETTINGS, last, NOW).refit


def test_a_fit_without_episodes_refits():
    decision = decide_refit(RefitPolicy(), SETTINGS, fit(new=0, episodes=0), NOW)
    assert decision.refit and "kept no episodes" in decision.reason


def test_zero_share_refits_on_any_new_episode_and_zero_days_every_night():
    assert decide_refit(RefitPolicy(min_new_share=0), SETTINGS, fit(new=1), NOW).refit
    assert not decide_refit(RefitPolicy(min_new_share=0), SETTINGS, fit(new=0), NOW).refit
    assert decide_refit(RefitPolicy(max_age_days=0), SETTINGS, fit(new=0, days=0.01), NOW).refit


def test_policy_settings_from_the_environment():
    env = {"RELIEF_DEMO": "1"}
    assert from_env(env=env).refit == RefitPolicy() and not from_env(env=env).full_derive
    chosen = from_env(
        env={
            **env,
            "RELIEF_REFIT_SHARE": "0.1",
            "RELIEF_REFIT_MAX_DAYS": "3",
            "RELIEF_REFIT": "1",
            "RELIEF_FULL_DERIVE": "true",
        }
    )
    assert chosen.refit == RefitPolicy(min_new_share=0.1, max_age_days=3, always=True)
    assert chosen.full_derive
    assert chosen.parameters()["refit"] == {"min_new_share": 0.1, "max_age_days": 3, "always": True}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RELIEF_REFIT_SHARE", "5%", "RELIEF_REFIT_SHARE must be a number"),
        ("RELIEF_REFIT_SHARE", "5", "RELIEF_REFIT_SHARE must be a fraction between 0 and 1"),
        ("RELIEF_REFIT_MAX_DAYS", "-1", "RELIEF_REFIT_MAX_DAYS must be a number of days >= 0"),
        ("RELIEF_REFIT", "sometimes", "RELIEF_REFIT must be 1 or 0"),
        ("RELIEF_FULL_DERIVE", "2", "RELIEF_FULL_DERIVE must be 1 or 0"),
    ],
)
def test_bad_policy_settings_name_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=message):
        from_env(env={"RELIEF_DEMO": "1", name: value})
