"""The privacy gate: every CPR-shaped value masked, in text, frames, logs and exceptions."""

from __future__ import annotations

import datetime as dt
import io
import logging

import polars as pl
import pytest
from hypothesis import Verbosity, given, settings, strategies as st

from pipelines import privacy
from tests.builders import cpr_for


def python_windows(text: str) -> list[str]:
    """Every ten-digit window of ``text`` (a hyphen or space after six digits allowed) whose
    date exists by the century rule, found by brute force with Python's calendar."""
    found = []
    for start in range(len(text)):
        for sep in ("", "-", " "):
            piece = text[start:start + 10 + len(sep)]
            if len(piece) < 10 + len(sep) or piece[6:6 + len(sep)] != sep:
                continue
            digits = piece[:6] + piece[6 + len(sep):]
            if not digits.isdigit():
                continue
            yy, seventh = int(digits[4:6]), int(digits[6])
            century = (1900 if seventh <= 3 else (2000 if yy <= 36 else 1900) if seventh in (4, 9)
                       else (2000 if yy <= 57 else 1800))
            try:
                dt.date(century + yy, int(digits[2:4]), int(digits[:2]))
            except ValueError:
                continue
            found.append(digits)
    return found


cprs = st.builds(lambda born, serial: cpr_for(born, serial),
                 st.dates(dt.date(1900, 1, 1), dt.date(2036, 12, 31)), st.integers(0, 999))
forms = st.sampled_from(["{}", "{0}-{1}", "{0} {1}"])


@st.composite
def texts_with_cprs(draw):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        parts.append(draw(st.text(alphabet="abc 0123456789-;,<>\"'", max_size=15)))
        number, form = draw(cprs), draw(forms)
        parts.append(form.format(number[:6], number[6:]) if form != "{}" else number)
    parts.append(draw(st.text(alphabet="xyz 0123456789-", max_size=15)))
    return "".join(parts)


# Quiet: a failing example would otherwise be printed, CPR-shaped values and all.
@settings(max_examples=400, deadline=None, verbosity=Verbosity.quiet)
@given(texts_with_cprs())
def test_no_window_that_could_be_a_cpr_survives(text):
    masked = privacy.mask(text)
    survivors = len(python_windows(masked))
    assert survivors == 0
    idempotent = privacy.mask(masked) == masked
    assert idempotent


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=50))
def test_text_without_digits_is_untouched(text):
    assert privacy.mask(text) == text


@pytest.mark.parametrize("text, shown", [
    ("column(s) , 0, 0401533632, 0508341710 appear", "column(s) , 0, <cpr hidden>, <cpr hidden> appear"),
    ("050834 1710", "<cpr hidden>"),
    ("H401-050834-1710", "H401-<cpr hidden>"),
    ("municipality_code=3112991234", "municipality_code=<cpr hidden>"),
    ("9999999999", "9999999999"),          # no such date: not a CPR number
    ("20250000012345", "20250000012345"),  # a long id whose windows are no dates
    ("101", "101"),
], ids=range(7))
def test_mask_examples(text, shown):
    as_expected = privacy.mask(text) == shown  # compared quietly: no CPR in the test output
    assert as_expected


def test_masked_frame_and_the_record_id_rule():
    frame = pl.DataFrame({"a": ["S-1", "0101801234", None], "n": [1, 2, 3]})
    assert privacy.masked_frame(frame)["a"].to_list() == ["S-1", "<cpr hidden>", None]
    flags = frame.select(privacy.holds_cpr_expr(pl.col("a"))).to_series().to_list()
    assert flags == [False, True, False]


def test_log_records_and_tracebacks_pass_the_gate():
    privacy.install_log_gate()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("kvalitet.test-gate")
    logger.addHandler(handler)
    try:
        logger.error("value %s in %s", "0101801234", "stroke_2024.csv")
        try:
            raise ValueError("bad 010180-1234 here")
        except ValueError:
            logger.exception("failed on %s", "0101801234")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "<cpr hidden>" in text and "ValueError" in text
    survivors = len(python_windows(text))
    assert survivors == 0


def test_gated_errors_are_masked_and_unchained():
    def leaky():
        try:
            {}["0101801234"]
        except KeyError as inner:
            raise RuntimeError(f"lookup failed: {inner}")

    with pytest.raises(privacy.MaskedError) as caught:
        privacy.gated(leaky)()
    leaked = "0101801234" in str(caught.value)
    assert not leaked
    assert str(caught.value).startswith("RuntimeError: lookup failed")
    assert caught.value.__context__ is None and caught.value.__cause__ is None
