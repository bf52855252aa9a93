"""The refit policy across nightly runs on SQLite and PostgreSQL: a 1 % night keeps the
last fit (status no_refit, no results of its own, the views unchanged), a larger share,
an old fit, changed settings or a request refit."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from pipeline import stages
from pipeline.config import ModelSettings, RefitPolicy
from pipeline.synth import write_delivery
from pipeline.warehouse import Warehouse
from tests.conftest import RESEARCHER_VIEWS


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Landing folders of three nights: 200 patients, then +2 (1 %), then +30 (15 %)."""
    root = tmp_path_factory.mktemp("refit")
    made = [
        write_delivery(root / "d" / "d1", patients=200, seed=41),
        write_delivery(root / "d" / "d2", patients=2, seed=42, id_prefix="B"),
        write_delivery(root / "d" / "d3", patients=30, seed=43, id_prefix="C"),
    ]
    landings = []
    for n in range(3):
        landing = root / f"night{n + 1}"
        for folder in made[: n + 1]:
            shutil.copytree(folder, landing / folder.name)
        landings.append(landing)
    return landings


def results_rows(wh: Warehouse, run_id: str) -> int:
    table = wh.table("results", "cox")
    with wh.engine.connect() as conn:
        query = select(func.count()).select_from(table).where(table.c.run_id == run_id)
        return conn.execute(query).scalar_one()


def latest_run(wh: Warehouse) -> set[str]:
    """The run ids every researcher view shows."""
    shown: set[str] = set()
    with wh.engine.connect() as conn:
        for view in RESEARCHER_VIEWS:
            name = f"results.{view}" if wh.dialect == "postgresql" else f"results__{view}"
            if view == "v_latest_dq_summary":
                continue  # the fitting run's validation rows; empty when it validated nothing
            shown |= set(conn.execute(text(f"SELECT DISTINCT run_id FROM {name}")).scalars())
    return shown


def test_a_one_percent_night_keeps_the_last_fit(warehouse_url, settings_for, nights):
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    first = stages.run_all(settings, nights[0], run_id="n-1")
    assert first.counts["model"]["refit"] == "no earlier fit"
    assert first.kept_fit is None and Path(first.report).exists()

    second = stages.run_all(settings, nights[1], run_id="n-2")
    skipped = second.counts["model"]["skipped"]
    assert "since fit n-1" in skipped and "<= 5.0%" in skipped and "stay current" in skipped
    assert second.kept_fit == "n-1" and second.report == first.report
    assert "report" not in second.counts
    run = wh.read("results", "model_runs").set_index("run_id").loc["n-2"]
    assert run.status == "no_refit" and run.finished_at is not None and not run.report_path
    assert json.loads(run.row_counts)["model"] == {"skipped": skipped, "last_fit": "n-1"}
    assert second.counts["derive"]["mode"] == "incremental"
    assert second.counts["derive"]["patients"] == 2
    assert results_rows(wh, "n-2") == 0 and results_rows(wh, "n-1") > 0
    assert latest_run(wh) == {"n-1"}

    # a re-run of the same night decides the same and leaves no rows of its own
    again = stages.run_all(settings, nights[1], run_id="n-2")
    assert again.counts["model"]["skipped"] == skipped and results_rows(wh, "n-2") == 0

    # 15 % more patients since n-1 (the 1 % of n-2 included): refit, views move on
    third = stages.run_all(settings, nights[2], run_id="n-3")
    assert "since fit n-1" in third.counts["model"]["refit"]
    assert "> 5.0%" in third.counts["model"]["refit"]
    assert latest_run(wh) == {"n-3"} and results_rows(wh, "n-3") > 0
    snapshot = wh.read("analysis", "episodes", wh.table("analysis", "episodes").c.run_id == "n-3")
    assert len(snapshot) == third.counts["derive"]["episodes"]


def test_requests_changed_settings_and_age_refit(warehouse_url, settings_for, nights):
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    stages.run_all(settings, nights[0], run_id="n-1")

    quiet = stages.run_all(settings, nights[0], run_id="n-2")  # nothing new
    assert "0 episodes new or re-derived" in quiet.counts["model"]["skipped"]

    asked = stages.run_all(
        replace(settings, refit=RefitPolicy(always=True)), nights[0], run_id="n-3"
    )
    assert asked.counts["model"]["refit"] == "refit requested"

    models = ModelSettings(horizon_days=60)
    changed = stages.run_all(replace(settings, models=models), nights[0], run_id="n-4")
    assert changed.counts["model"]["refit"] == "models settings changed since fit n-3"

    old = replace(settings, models=models, refit=RefitPolicy(max_age_days=0))
    aged = stages.run_all(old, nights[0], run_id="n-5")
    assert "fit n-4 is 0.0 days old (> 0)" in aged.counts["model"]["refit"]
    statuses = wh.read("results", "model_runs").set_index("run_id").status.to_dict()
    assert statuses == {
        "n-1": "success",
        "n-2": "no_refit",
        "n-3": "success",
        "n-4": "success",
        "n-5": "success",
    }


def test_the_model_stage_alone_forces_a_refit_on_request(warehouse_url, settings_for, nights):
    """What the DAG's ``refit`` param does: the same run's model stage refits when asked."""
    settings = settings_for(warehouse_url)
    wh = Warehouse(warehouse_url)
    stages.run_all(settings, nights[0], run_id="n-1")
    skipped = stages.run_all(settings, nights[1], run_id="n-2")
    assert skipped.counts["model"].get("skipped")
    assert stages.report(settings, "n-2") == {"skipped": "model not refitted"}

    stages.begin(settings, run_id="n-2", trigger="cli", resume=True)
    forced = stages.model(settings, "n-2", refit=True)
    assert forced["refit"] == "refit requested" and results_rows(wh, "n-2") > 0
    stages.report(settings, "n-2")
    run = wh.read("results", "model_runs").set_index("run_id").loc["n-2"]
    assert run.status == "success" and run.report_path
    sizes = wh.read("analysis", "episodes").groupby("run_id").size()
    assert sizes["n-2"] == skipped.counts["derive"]["episodes"] > sizes["n-1"]
