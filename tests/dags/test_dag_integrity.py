"""The DAG files import cleanly, stay thin, and wire one task per stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "relief_nightly" in dagbag.dags


def test_nightly_has_one_task_per_stage_in_order(dagbag):
    dag = dagbag.dags["relief_nightly"]
    order = ["begin", "ingest", "validate", "derive", "model", "report"]
    assert set(order) <= set(dag.task_ids)
    for upstream, downstream in zip(order[1:], order[2:], strict=False):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert dag.max_active_runs == 1 and not dag.catchup


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_import_nothing_heavy_at_top_level(path):
    tree = ast.parse(path.read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else n.names[0].name for n in top_level
    }
    assert not {
        m
        for m in modules
        if m.split(".")[0]
        in {"pandas", "pipeline", "great_expectations", "statsmodels", "sqlalchemy"}
    }
