"""Keyed pseudonymisation of patient identifiers, applied at the door (ingest).

HMAC-SHA256 (RFC 2104) with a secret key: the same patient gets the same key in
every delivery, so episodes link across deliveries, but without the key nobody can
re-compute or brute-force the mapping from the (small) space of clinic ids.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd


def pseudonymise(ids: pd.Series, key: str) -> pd.Series:
    """Replace each identifier by its hex HMAC-SHA256; missing ids stay missing.

    Hashes each distinct id once (patients repeat across thousands of rows).
    """
    secret = key.encode("utf-8")
    stripped = ids.astype("string").str.strip()
    uniques = stripped.dropna().unique()
    mapping = {
        value: hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
        for value in uniques
        if value != ""
    }
    return stripped.map(mapping).astype(object).where(lambda s: s.notna(), None)
