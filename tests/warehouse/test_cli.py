"""The demo path through the `relief` command line, in a temporary working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RELIEF = str(Path(sys.executable).with_name("relief"))


def relief(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELIEF_")}
    return subprocess.run(
        [RELIEF, *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=600
    )


def test_synth_then_run_on_the_default_sqlite_warehouse(tmp_path):
    synth = relief("synth", "--patients", "300", "--seed", "9", "--out", "landing/d1", cwd=tmp_path)
    assert synth.returncode == 0, synth.stderr
    assert (tmp_path / "landing/d1/truth.json").exists()

    run = relief("run", "--landing", "landing", "--demo", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(": ", 1) for line in run.stdout.strip().splitlines())
    assert Path(lines["report"]).is_file()
    assert (tmp_path / "relief_warehouse.db").is_file()  # the embedded default

    listed = relief("status", cwd=tmp_path)
    assert lines["run id"] in listed.stdout and "success" in listed.stdout
    assert f"{lines['run id']} report: {lines['report']}" in listed.stdout


def test_missing_key_outside_demo_is_one_clear_line(tmp_path):
    run = relief("run", "--landing", str(tmp_path), cwd=tmp_path)
    assert run.returncode == 2
    assert "RELIEF_PSEUDONYM_KEY" in run.stderr and "Traceback" not in run.stderr


def test_missing_landing_folder_is_one_clear_line(tmp_path):
    run = relief("run", "--landing", "nowhere", "--demo", cwd=tmp_path)
    assert run.returncode == 2
    assert "nowhere" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "command", ["synth", "run", "status", "ingest", "dq", "fit", "predict", "db"]
)
def test_every_subcommand_has_help(command, tmp_path):
    shown = relief(command, "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "usage: relief" in shown.stdout


def test_warehouse_url_from_environment(tmp_path):
    relief("synth", "--patients", "150", "--seed", "2", "--out", "landing/d1", cwd=tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    run = relief("run", "--landing", "landing", "--demo", cwd=tmp_path, RELIEF_WAREHOUSE_URL=url)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "relief_warehouse.db").exists()


def test_predict_from_a_stored_run(tmp_path):
    relief("synth", "--patients", "300", "--seed", "3", "--out", "landing/d1", cwd=tmp_path)
    run = relief("run", "--landing", "landing", "--demo", cwd=tmp_path)
    run_id = dict(line.split(": ", 1) for line in run.stdout.strip().splitlines())["run id"]
    profile = tmp_path / "profile.json"
    profile.write_text(
        '{"route": "IN", "is_series": false, "dose_mg_per_kg": 0.5, "infusion_hours": 0.1,'
        ' "n_comorbidities": 2, "baseline_score": 8}'
    )
    shown = relief("predict", "--run", run_id, "--profile", str(profile), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id}" in shown.stdout and "P(relief lasts 30 days)" in shown.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"route": "IN", "colour": "blue"}')
    refused = relief("predict", "--run", run_id, "--profile", str(bad), cwd=tmp_path)
    assert (
        refused.returncode == 2 and "colour" in refused.stderr and "Traceback" not in refused.stderr
    )
