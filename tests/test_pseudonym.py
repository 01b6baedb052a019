import hashlib
import hmac

import polars as pl
from hypothesis import given, settings, strategies as st

from pipelines.pseudonym import pseudonymise


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.from_regex(r"[0-9]{10}", fullmatch=True), min_size=1, max_size=20),
       key=st.text(min_size=16, max_size=100))
def test_equals_python_hmac_sha256(values, key):
    """Keys of every length (longer than SHA-256's 64-byte block too) and any Unicode text."""
    got = pseudonymise(pl.Series(values), key.encode()).to_list()
    assert got == [hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest() for v in values]


def test_key_matters_and_nulls_stay_null():
    a = pseudonymise(pl.Series(["0101801234", None]), b"k" * 16).to_list()
    b = pseudonymise(pl.Series(["0101801234", None]), b"j" * 16).to_list()
    assert a[0] != b[0] and a[1] is None


def test_a_key_that_is_not_text_is_refused_by_name(monkeypatch):
    """Bytes the locale could not decode reach Python as surrogates: refused, naming the
    variable (and never showing the key)."""
    import pytest

    from pipelines import settings

    monkeypatch.setenv(settings.PSEUDONYM_KEY_ENV, "abcdefghijklmnopq\udcff\udcfe")
    with pytest.raises(settings.MissingPseudonymKey, match="KVALITET_PSEUDONYM_KEY must be UTF-8"):
        settings.pseudonym_key()
