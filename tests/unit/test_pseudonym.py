"""Keyed pseudonyms: HMAC-SHA256, stable, keyed, missing stays missing; key sources."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pyarrow as pa

from pipeline.pseudonym import key_from_env, pseudonymise, pseudonymise_arrow

KEY = "test-key-0123456789abcdef"


def expected(value: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_hmac_sha256_of_trimmed_id_and_missing_stays_missing():
    out = pseudonymise(pd.Series(["P1", " P1 ", None, "", "P2"]), KEY)
    assert out.tolist() == [expected("P1"), expected("P1"), None, None, expected("P2")]


def test_arrow_and_pandas_agree_and_key_matters():
    ids = pa.chunked_array([["a", "b"], ["a", None]])
    assert pseudonymise_arrow(ids, KEY).to_pylist() == [
        expected("a"),
        expected("b"),
        expected("a"),
        None,
    ]
    assert pseudonymise_arrow(ids, KEY + "x").to_pylist()[0] != expected("a")


def test_key_sources_in_order():
    assert key_from_env({}) is None
    assert (
        key_from_env({"RELIEF_PSEUDONYM_KEY": "k1", "AIRFLOW_VAR_RELIEF_PSEUDONYM_KEY": "k2"})
        == "k1"
    )
    assert key_from_env({"AIRFLOW_VAR_RELIEF_PSEUDONYM_KEY": "k2"}) == "k2"
    assert key_from_env({"AIRFLOW_CONN_RELIEF_PSEUDONYM": "generic://:s%40cret@"}) == "s@cret"
    conn = '{"conn_type": "generic", "password": "json-secret"}'
    assert key_from_env({"AIRFLOW_CONN_RELIEF_PSEUDONYM": conn}) == "json-secret"
