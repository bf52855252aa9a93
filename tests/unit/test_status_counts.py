"""`relief status` summarises a run's stage counts; a night that kept the last fit says so."""

from pipeline.cli_status import summarise_counts


def test_refitted_run_counts_result_rows():
    line = summarise_counts({"ingest": {"rows": 120}, "model": {"km_curves": 40, "cox": 9}})
    assert line == "ingest: 120 rows; model: 49 rows"


def test_night_without_refit_names_the_fit_it_kept():
    counts = {"model": {"skipped": "2.0 % new episodes (< 5 %)", "last_fit": "n-2026-11-26"}}
    assert summarise_counts(counts) == (
        "model: not refitted, kept n-2026-11-26 (2.0 % new episodes (< 5 %))"
    )
