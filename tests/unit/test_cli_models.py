"""``relief fit`` / ``relief predict`` handlers called through argparse (rossi CSV at test time)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
from lifelines.datasets import load_rossi

from pipeline.cli_models import add_commands


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="relief")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = add_commands(sub)
    args = parser.parse_args(argv)
    return handlers[args.command](args)


@pytest.fixture
def rossi_csv(tmp_path: Path) -> Path:
    path = tmp_path / "rossi.csv"
    frame = load_rossi()
    frame["site"] = ["A", "B", "C"] * (len(frame) // 3) + ["A"] * (len(frame) % 3)
    frame.to_csv(path, index=False)
    return path


BASE = ["--time", "week", "--event", "arrest"]


def test_fit_writes_all_tables(rossi_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["fit", "--episodes", str(rossi_csv), *BASE, "--covariates", "fin,age,prio,site"]
    argv += ["--categorical", "site", "--group", "fin", "--cluster", "site", "--horizon", "52"]
    assert run([*argv, "--ties", "breslow", "--out", str(out)]) == 0
    cox = pd.read_csv(out / "cox.csv")
    assert list(cox.columns) == ["term", "coef", "se", "hr", "hr_lower", "hr_upper", "p"]
    assert set(cox["term"]) == {"fin", "age", "prio", "site[B]", "site[C]"}
    km = pd.read_csv(out / "km.csv")
    assert list(km.columns) == ["group", "time", "survival", "lower", "upper", "at_risk", "events"]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["group"]) == [0, 1] and summary["rmst"].between(0, 52).all()
    assert list(pd.read_csv(out / "logrank.csv").columns) == ["statistic", "df", "p"]
    ph = pd.read_csv(out / "ph_test.csv")
    assert list(ph.columns) == ["term", "statistic", "p"] and "GLOBAL" in set(ph["term"])


def test_fit_without_group_or_covariates(rossi_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    assert run(["fit", "--episodes", str(rossi_csv), *BASE, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["km.csv", "summary.csv"]


def test_fit_with_strata(rossi_csv: Path, tmp_path: Path) -> None:
    argv = ["fit", "--episodes", str(rossi_csv), *BASE, "--covariates", "fin,age"]
    assert run([*argv, "--strata", "wexp", "--out", str(tmp_path / "s")]) == 0
    assert list(pd.read_csv(tmp_path / "s" / "cox.csv")["term"]) == ["fin", "age"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--covariates", "fin,nope"], "nope"),
        (["--group", "missing_col"], "missing_col"),
    ],
)
def test_fit_missing_column_names_it(rossi_csv: Path, tmp_path: Path, extra, message) -> None:
    with pytest.raises(ValueError, match=message):
        run(["fit", "--episodes", str(rossi_csv), *BASE, *extra, "--out", str(tmp_path)])


def test_fit_no_events(tmp_path: Path) -> None:
    path = tmp_path / "none.csv"
    pd.DataFrame({"week": [1, 2, 3], "arrest": [0, 0, 0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="'arrest' has no events"):
        run(["fit", "--episodes", str(path), *BASE, "--out", str(tmp_path / "o")])


def write_profile(tmp_path: Path, profile: dict) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    return path


def test_predict_prints_curve(rossi_csv: Path, tmp_path: Path, capsys) -> None:
    profile = write_profile(tmp_path, {"fin": 1, "age": 25, "prio": 3, "site": "B"})
    argv = ["predict", "--profile", str(profile), "--episodes", str(rossi_csv), *BASE]
    assert run([*argv, "--covariates", "fin,age,prio", "--categorical", "site"]) == 0
    out = capsys.readouterr().out
    assert "site[B]" in out and "P(relief lasts 30 days)" in out
    assert out.count("\n") >= 12
    lines = [ln.split() for ln in out.splitlines() if ln[:3].strip().isdigit()]
    assert [int(ln[0]) for ln in lines] == [1, 7, 14, 30, 60, 90]
    assert lines[-1][1] == "nan"  # rossi follows up 52 weeks: day 90 not estimable


def test_predict_profile_mismatch(rossi_csv: Path, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, {"fin": 1, "agee": 25})
    argv = ["predict", "--profile", str(profile), "--episodes", str(rossi_csv), *BASE]
    with pytest.raises(ValueError, match=r"unknown keys \['agee'\], missing keys \['age'\]"):
        run([*argv, "--covariates", "fin,age"])


def test_predict_unknown_run_names_it(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, {})
    with pytest.raises(ValueError, match="r1"):
        run(
            [
                "predict",
                "--profile",
                str(profile),
                "--run",
                "r1",
                "--warehouse",
                f"sqlite:///{tmp_path}/w.db",
            ]
        )


def test_help_has_example(capsys) -> None:
    with pytest.raises(SystemExit):
        run(["fit", "--help"])
    assert "example:" in capsys.readouterr().out
