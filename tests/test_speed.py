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


# -- validation: every check in one pass gives Pandera's own failures ---------------------
import datetime as dt  # noqa: E402

from pipelines.extract_reader import ROW_NUMBER  # noqa: E402
from pipelines.validation import check_failures, pandera_failures  # noqa: E402
from schemas import EXTRACT_SCHEMAS  # noqa: E402
from schemas.columns import ValidationContext  # noqa: E402
from tests.builders import cpr_for  # noqa: E402

CONTEXT = ValidationContext(dt.date(2025, 12, 31), frozenset({"H401", "H402"}),
                            frozenset({101, 147}))
GOOD_CPR = cpr_for(dt.date(1950, 3, 4))
TEXTS = st.sampled_from([
    None, "", " ", "x", "ja", "NEJ", "uoplyst", "M", "f", "H401", "h402", "H999", "101", "147",
    "999", "1O1", "-3", "58", "59", "2.5", "DI63", "DI62", "2025-03-01", "2025-02-30",
    "2026-01-05", "2025-03-01 10:00", "2025-03-01T09:59:59", "2025-02-28 24:00",
    "2024-12-31 23:00", GOOD_CPR, GOOD_CPR[:6] + "-" + GOOD_CPR[6:], "3102801234", "12345",
    "S-1", "S-1", "S-2"])


@settings(max_examples=40, deadline=None)
@given(source=st.sampled_from(sorted(EXTRACT_SCHEMAS)), data=st.data())
def test_one_pass_checks_equal_pandera(source, data):
    schema = EXTRACT_SCHEMAS[source]
    height = data.draw(st.integers(0, 12))
    rows = pl.DataFrame({ROW_NUMBER: list(range(1, height + 1)),
                         **{c: data.draw(st.lists(TEXTS, min_size=height, max_size=height))
                            for c in schema.names}},
                        schema={ROW_NUMBER: pl.Int64, **{c: pl.String for c in schema.names}})
    typed = schema.typed(rows).with_columns(rows[ROW_NUMBER])
    contract = schema.pandera(CONTEXT)
    expected = pandera_failures(typed, contract, "f.csv")
    got = check_failures(typed, contract, "f.csv")
    assert got.to_dicts() == expected.to_dicts()


# -- orchestration: Prefect when a server is configured, else direct -----------------------
import pytest  # noqa: E402

from pipelines.cli import orchestration  # noqa: E402


@pytest.mark.parametrize("told, url, profile_url, expected", [
    ("direct", "http://x/api", None, "direct"), ("prefect", None, None, "prefect"),
    (None, None, None, "direct"), ("auto", "http://x/api", None, "prefect"),
    (None, None, "http://y/api", "prefect"), ("", "", None, "direct"),
])
def test_orchestration_follows_a_configured_server(monkeypatch, tmp_path, told, url,
                                                   profile_url, expected):
    for name, value in (("KVALITET_ORCHESTRATION", told), ("PREFECT_API_URL", url)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    if profile_url:
        (tmp_path / "profiles.toml").write_text(
            f'active = "local"\n[profiles.local]\nPREFECT_API_URL = "{profile_url}"\n')
    assert orchestration() == expected
