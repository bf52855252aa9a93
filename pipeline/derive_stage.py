"""The derive stage: core tables -> ``analysis.episodes`` for one run."""

from __future__ import annotations

from typing import Any

from pipeline.config import OutcomeDefinition
from pipeline.episodes import derive_episodes
from pipeline.warehouse import Warehouse


def derive_and_store(wh: Warehouse, run_id: str, outcome: OutcomeDefinition) -> dict[str, Any]:
    """Derive episodes from all of core and make them this run's rows (a re-run replaces them)."""
    episodes = derive_episodes(
        wh.read("core", "patients"),
        wh.read("core", "treatments"),
        wh.read("core", "pain_assessments"),
        outcome,
    )
    with wh.begin() as conn:
        wh.replace_run_rows(conn, "analysis", "episodes", run_id, episodes)
    return {
        "episodes": len(episodes),
        "responders": int(episodes["responded"].sum()) if len(episodes) else 0,
        "events": int(episodes["event"].fillna(0).sum()) if len(episodes) else 0,
    }


def read_episodes(wh: Warehouse, run_id: str):
    """This run's episodes, with timestamp columns parsed."""
    table = wh.table("analysis", "episodes")
    return wh.read("analysis", "episodes", table.c.run_id == run_id)
