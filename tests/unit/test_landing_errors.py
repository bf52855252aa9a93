"""Bad input: a clear error naming the file, the delivery failed, the others still load."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.ingest import ingest
from pipeline.warehouse import Warehouse

KEY = "test-key-0123456789abcdef"


def latin1(folder: Path) -> Path:
    path = folder / "patients.csv"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[-1] = lines[-1].replace(lines[-1].split(",")[3], "neuropathic-é")
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path


def missing_column(folder: Path) -> Path:
    path = folder / "treatments.csv"
    pd.read_csv(path, dtype=str).drop(columns="route").to_csv(path, index=False)
    return path


def empty(folder: Path) -> Path:
    path = folder / "pain_assessments.csv"
    path.write_bytes(b"")
    return path


def header_only(folder: Path) -> Path:
    path = folder / "pain_assessments.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    return path


def unreadable(folder: Path) -> Path:
    path = folder / "treatments.csv"
    path.unlink()
    path.mkdir()  # a directory where a file should be: unreadable even as root
    return path


def parquet_named_csv(folder: Path) -> Path:
    path = folder / "patients.csv"
    pd.read_csv(path, dtype=str).to_parquet(path, index=False)
    return path


def csv_named_parquet(folder: Path) -> Path:
    path = folder / "patients.csv"
    target = folder / "patients.parquet"
    path.rename(target)
    return target


def ragged_row(folder: Path) -> Path:
    path = folder / "patients.csv"
    with path.open("a") as handle:
        handle.write("P999999,F,1970,CRPS,,S01,unexpected\n")
    return path


CASES = {
    "latin1": (latin1, "not UTF-8"),
    "missing_column": (missing_column, "missing required column(s) route"),
    "empty": (empty, "empty (0 bytes)"),
    "header_only": (header_only, "no data rows"),
    "unreadable": (unreadable, "directory"),
    "parquet_named_csv": (parquet_named_csv, "not a CSV text file"),
    "csv_named_parquet": (csv_named_parquet, "not a Parquet file"),
    "ragged_row": (ragged_row, "Expected 6 columns, got 7"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    from pipeline.synth import write_delivery

    return write_delivery(tmp_path_factory.mktemp("tpl") / "d", patients=12, seed=8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_fails_its_delivery_with_a_clear_message(case, template, tmp_path):
    landing = tmp_path / "landing"
    for name in ("a_bad", "b_good"):
        (landing / name).mkdir(parents=True)
        for f in template.iterdir():
            (landing / name / f.name).write_bytes(f.read_bytes())
    breaker, expected = CASES[case]
    broken = breaker(landing / "a_bad")
    wh = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    wh.create_schema()
    bad, good = ingest(wh, landing, KEY)
    assert bad.status == "failed" and good.status == "loaded"
    assert str(broken) in bad.error and expected in bad.error, bad.error
    assert "P999999" not in bad.error and "P00000" not in bad.error  # no raw id in messages
    manifest = wh.read("staging", "deliveries").set_index("delivery_id")
    assert manifest.loc[bad.delivery_id, "status"] == "failed"
    assert manifest.loc[bad.delivery_id, "error"] == bad.error
    for table in ("patients", "treatments", "pain_assessments"):
        assert set(wh.read("staging", table).delivery_id) == {good.delivery_id}
