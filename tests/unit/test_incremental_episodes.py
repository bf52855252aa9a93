"""derive_episodes on the few patients an incremental night re-derives: frames read from
an empty selection have untyped (object) columns and must still derive."""

from __future__ import annotations

import pandas as pd

from pipeline.episodes import derive_episodes
from pipeline.schema import CORE_COLUMNS


def empty(table: str) -> pd.DataFrame:
    """What pd.read_sql returns for a core table when no row matches: object columns."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in CORE_COLUMNS[table]})


PATIENT = pd.DataFrame(
    {
        "patient_key": ["k1"],
        "sex": ["F"],
        "birth_year": [1950],
        "primary_condition": ["neuropathic"],
        "comorbidities": [""],
        "site_id": ["S01"],
    }
)
TREATMENT = pd.DataFrame(
    {
        "treatment_id": ["T1"],
        "patient_key": ["k1"],
        "administered_at": [pd.Timestamp("2024-01-01 08:00")],
        "duration_min": [60.0],
        "route": ["IV"],
        "dose_mg": [35.0],
        "weight_kg": [70.0],
    }
)


def test_a_patient_without_assessments_gets_an_episode_without_baseline():
    episodes = derive_episodes(PATIENT, TREATMENT, empty("pain_assessments"))
    assert len(episodes) == 1
    row = episodes.iloc[0]
    assert row.exclusion == "no_baseline" and not row.responded and row.censor_reason is None
    assert row.dose_mg_per_kg == 0.5 and row.age == 74


def test_a_patient_without_a_patient_row_keeps_empty_covariates():
    scores = pd.DataFrame(
        {
            "assessment_id": ["A1", "A2"],
            "patient_key": ["k1", "k1"],
            "assessed_at": [pd.Timestamp("2023-12-30"), pd.Timestamp("2024-01-03")],
            "pain_score": [8, 3],
        }
    )
    episodes = derive_episodes(empty("patients"), TREATMENT, scores)
    assert len(episodes) == 1 and episodes.iloc[0].responded
    assert pd.isna(episodes.iloc[0].age) and pd.isna(episodes.iloc[0].sex)


def test_nothing_to_derive_gives_no_rows():
    frames = (empty("patients"), empty("treatments"), empty("pain_assessments"))
    assert derive_episodes(*frames).empty
