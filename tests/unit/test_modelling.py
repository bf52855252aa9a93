"""The model stage: analysis choice and tiny-cohort errors."""

from __future__ import annotations

import pandas as pd
import pytest
from lifelines.exceptions import ConvergenceError

from pipeline import analysis_params, modelling, sensitivity
from pipeline.config import ConfigError, ModelSettings
from pipeline.episodes import derive_episodes
from pipeline.errors import NoResultsError
from pipeline.schema import ANALYSES, ANALYSIS_TABLES, PATIENT_KEY
from pipeline.synth import generate


@pytest.fixture(scope="module")
def episodes() -> pd.DataFrame:
    frames, _ = generate(300, 7)
    f = {k: v.rename(columns={"patient_id": PATIENT_KEY}) for k, v in frames.items()}
    f["treatments"]["administered_at"] = pd.to_datetime(f["treatments"]["administered_at"])
    f["pain_assessments"]["assessed_at"] = pd.to_datetime(f["pain_assessments"]["assessed_at"])
    return derive_episodes(f["patients"], f["treatments"], f["pain_assessments"])


def test_analyses_mirror_the_analyst_choices() -> None:
    assert ANALYSES == analysis_params.MODELS
    assert ModelSettings().analyses == ANALYSES
    with pytest.raises(ConfigError, match="unknown analyses"):
        ModelSettings(analyses=("km", "bayes"))


def test_unchosen_analyses_are_not_fitted(episodes, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("an unchosen analysis was fitted")

    for name in ("interval_censored", "dose_responses", "competing_risks", "ph_diagnostics"):
        monkeypatch.setattr(sensitivity, name, boom)
    results = modelling.fit_all(episodes, ModelSettings(analyses=("km", "cox")))
    expected = {*ANALYSIS_TABLES["km"], *ANALYSIS_TABLES["cox"]}
    assert set(results) == expected | {"response_rates", "attrition"}


def test_ph_test_alone_fits_cox_without_publishing_it(episodes) -> None:
    results = modelling.fit_all(episodes, ModelSettings(analyses=("ph_test",)))
    assert "ph_test" in results and "cox" not in results and "km_curves" not in results


def test_lifelines_convergence_error_is_a_data_problem(episodes, monkeypatch) -> None:
    def no_convergence(*args, **kwargs):
        raise ConvergenceError("Convergence halted due to matrix inversion problems.")

    monkeypatch.setattr(sensitivity, "interval_censored", no_convergence)
    with pytest.raises(NoResultsError, match="interval_censored: the model did not converge"):
        modelling.fit_all(episodes, ModelSettings(analyses=("interval_censored",)))


def test_aft_subsample_is_seeded_and_bounded() -> None:
    frame = pd.DataFrame({"a": range(50)})
    assert sensitivity.aft_sample(frame, limit=100) is frame
    first, second = sensitivity.aft_sample(frame, limit=20), sensitivity.aft_sample(frame, limit=20)
    assert len(first) == 20 and first.index.equals(second.index)
    assert first.index.is_monotonic_increasing


def test_turnbull_grid_coarsens_for_large_cohorts() -> None:
    assert sensitivity.turnbull_grid_days(1_000) == 0.25
    assert sensitivity.turnbull_grid_days(sensitivity.TURNBULL_FINE_MAX_EPISODES + 1) == 1.0
