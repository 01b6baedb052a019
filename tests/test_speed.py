"""The speed work keeps results as they were: each shortcut is checked against the long way."""

from __future__ import annotations

import hashlib
import hmac

import polars as pl
from hypothesis import given, settings, strategies as st

from pipelines.extract_reader import content_hash, known_hash
from pipelines.pseudonym import Pseudonyms, pseudonymise

KEY = b"speed-test-key-0123456789"
CPRS = st.lists(st.one_of(st.none(), st.from_regex(r"[0-9]{10}", fullmatch=True)), max_size=30)


@settings(max_examples=50, deadline=None)
@given(batches=st.lists(CPRS, min_size=1, max_size=4), limit=st.integers(1, 40))
def test_pseudonyms_once_per_distinct_cpr_equal_hmac(batches, limit):
    """Across batches (extracts) and past the cache's bound, each value is the HMAC of its CPR."""
    pseudonyms = Pseudonyms(KEY, limit=limit)
    for batch in batches:
        got = pseudonyms.of(pl.Series(batch, dtype=pl.String)).to_list()
        assert got == [None if v is None else hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()
                       for v in batch]
        assert pseudonyms.known.height <= limit


def test_pseudonyms_hash_each_new_cpr_once(monkeypatch):
    hashed = []

    def counting(cprs, key):
        hashed.extend(cprs.to_list())
        return pseudonymise(cprs, key)

    monkeypatch.setattr("pipelines.pseudonym.pseudonymise", counting)
    pseudonyms = Pseudonyms(KEY)
    pseudonyms.of(pl.Series(["0101801111", "0101801111", "0202802222"]))
    pseudonyms.of(pl.Series(["0202802222", "0303803333", None]))
    assert sorted(hashed) == ["0101801111", "0202802222", "0303803333"]


def test_known_hash_reuses_ingests_hash_and_sees_a_changed_file(tmp_path, monkeypatch):
    path = tmp_path / "stroke_2025-01-31.csv"
    path.write_bytes(b"a;b\n1;2\n")
    first = content_hash(path)
    opened = []
    real_open = type(path).open

    def counting_open(self, *args, **kwargs):
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(type(path), "open", counting_open)
    assert known_hash(path) == first and opened == []  # the manifest does not read it again
    path.write_bytes(b"a;b\n1;2\n3;4\n")
    assert known_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest() != first
