"""Ingest's pseudonymiser (precomputed HMAC key pads) equals the standard library's HMAC."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pipeline.pseudonym import Pseudonymiser

KEYS = ["k" * 16, "x" * 64, "y" * 65, "clé-ünïcødé-0123", "z" * 300]
IDS = ["P1", "", " ", "é" * 100, "a" * 200, "P0000001"]


@pytest.mark.parametrize("key", KEYS)
def test_digest_is_hmac_sha256_hex_for_short_long_and_non_ascii_keys(key):
    keyed = Pseudonymiser(key)
    for value in IDS:
        assert (
            keyed.digest(value)
            == hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
        )
        assert keyed.digest(value) == keyed.digest(value)  # cached, unchanged
