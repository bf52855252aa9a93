"""Reference datasets, loaded from the installed lifelines package (never committed).

The project keeps no patient data in the repository, so the tests and the R
script both read the public teaching datasets that lifelines ships:

- ``lung``: NCCTG advanced lung cancer (Loprinzi et al. 1994), identical to
  R's ``survival::lung`` except that ``status`` is 0/1 instead of 1/2
  (``make_reference.R`` checks this).
- ``rossi``: recidivism of released prisoners (Rossi, Berk & Lenihan 1980), as
  R's ``carData::Rossi`` (first 9 columns).
- ``gbsg2``: German Breast Cancer Study Group 2 (Schumacher et al. 1994), as R's
  ``TH.data::GBSG2``; has string covariates for the categorical Cox tests.

Run ``python tests/reference/ref_datasets.py DIR`` to write them as CSV to DIR
for ``make_reference.R``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from lifelines import datasets


def load(name: str) -> pd.DataFrame:
    """One reference dataset by name (lung, rossi, gbsg2)."""
    loaders = {
        "lung": datasets.load_lung,
        "rossi": datasets.load_rossi,
        "gbsg2": datasets.load_gbsg2,
    }
    return loaders[name]()


NAMES = ("lung", "rossi", "gbsg2")


def export(directory: Path) -> None:
    """Write every reference dataset to ``directory/<name>.csv`` (NA as empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        load(name).to_csv(directory / f"{name}.csv", index=False)


if __name__ == "__main__":
    export(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/relief-reference"))
