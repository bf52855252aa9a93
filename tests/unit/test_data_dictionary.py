"""docs/warehouse.md documents exactly the tables, views and columns the schema has."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import inspect

from pipeline import migrate
from pipeline.tables import build_metadata
from pipeline.warehouse import Warehouse

DOC = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"
HEADING = re.compile(r"^### `(\w+)\.(\w+)`( \(view\))?\s*$")
ROW = re.compile(r"^\| `(\w+)` \|")


def documented() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({layer.table: columns}, {results.view: columns})`` as written in the doc."""
    tables: dict[str, list[str]] = {}
    views: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if heading := HEADING.match(line):
            current = []
            target = views if heading.group(3) else tables
            target[f"{heading.group(1)}.{heading.group(2)}"] = current
        elif line.startswith("#"):
            current = None
        elif current is not None and (row := ROW.match(line)):
            current.append(row.group(1))
    return tables, views


def test_every_table_and_column_is_documented_and_nothing_more():
    tables, _ = documented()
    schema = {
        f"{t.schema}.{t.name}": [c.name for c in t.columns]
        for t in build_metadata("postgresql").tables.values()
    }
    assert sorted(tables) == sorted(schema)
    for name, columns in schema.items():
        assert tables[name] == columns, name


def test_every_view_and_column_is_documented_and_nothing_more(tmp_path):
    _, views = documented()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(url)
    probe = inspect(Warehouse(url).engine)
    schema = {
        "results." + v.removeprefix("results__"): [c["name"] for c in probe.get_columns(v)]
        for v in probe.get_view_names()
    }
    assert sorted(views) == sorted(schema)
    for name, columns in schema.items():
        assert views[name] == columns, name
