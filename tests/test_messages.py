"""Every user-visible text comes from a message catalogue per language; none is missing,
and a Danish report carries no English."""

from __future__ import annotations

import re
from html import unescape

import pytest
import yaml

from pipelines import settings
from pipelines.definitions import definition_files, load_definitions
from reports import labels
from reports.labels import MESSAGES_DIR, TEXT, languages, missing_keys


def _catalogues_with(folder, monkeypatch, language: str, data: dict) -> None:
    """Danish and English as committed, plus `language` with `data`, as the catalogues."""
    for name in ("da", "en"):
        (folder / f"{name}.yaml").write_text((MESSAGES_DIR / f"{name}.yaml").read_text(
            encoding="utf-8"), encoding="utf-8")
    (folder / f"{language}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                             encoding="utf-8")
    monkeypatch.setattr(labels, "MESSAGES_DIR", folder)
    labels.catalogue.cache_clear()


def test_danish_english_and_swedish_are_there():
    assert {"da", "en", "sv"} <= set(languages())


@pytest.mark.parametrize("language", [lang for lang in ("en", "sv")])
def test_every_language_has_every_key(language):
    assert missing_keys(language) == []


def test_a_missing_key_fails(tmp_path, monkeypatch):
    """A catalogue without a key is an error, never a silent fallback to another language."""
    data = yaml.safe_load((MESSAGES_DIR / "en.yaml").read_text(encoding="utf-8"))
    del data["funnel_note"]
    del data["indicators"]["STROKE_01"]["rationale"]
    _catalogues_with(tmp_path, monkeypatch, "xx", data)
    try:
        assert set(missing_keys("xx")) == {"funnel_note", "indicators.STROKE_01.rationale"}
        with pytest.raises(labels.MissingMessage, match="xx.yaml has no 'funnel_note'"):
            labels.catalogue("xx")["funnel_note"]
    finally:
        labels.catalogue.cache_clear()


def test_an_indicator_without_words_in_one_language_is_refused_by_the_check(tmp_path,
                                                                             monkeypatch):
    """The check names the catalogue that lacks an indicator's words, instead of that
    language's report failing later (a new language file, or an indicator added in da/en)."""
    from pipelines.definitions import DefinitionError

    sv = yaml.safe_load((MESSAGES_DIR / "sv.yaml").read_text(encoding="utf-8"))
    del sv["indicators"]["HIP_02"]
    _catalogues_with(tmp_path, monkeypatch, "sv", sv)
    try:
        with pytest.raises(DefinitionError, match=r"HIP_02.yaml: .*HIP_02 in the message "
                                                  r"catalogue sv\.yaml"):
            load_definitions(settings.INDICATORS_DIR)
    finally:
        labels.catalogue.cache_clear()


def test_every_indicator_has_its_words_in_every_language_and_none_in_its_file():
    definitions = load_definitions(settings.INDICATORS_DIR)
    for language in languages():
        for d in definitions:
            words = TEXT[language]["indicators"][d.id]
            assert words["title"] and words["rationale"], (language, d.id)
    for path in definition_files(settings.INDICATORS_DIR):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert "title" not in data and "rationale" not in data, path.name


def english_only() -> set[str]:
    """English catalogue texts a Danish reader would not also see in Danish (names such as
    'Region' or 'O/E' are the same in both), long enough to be more than a word part."""
    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    danish = set(strings(TEXT["da"]))
    found = set()
    for text in strings(TEXT["en"]):
        for piece in re.split(r"\{[a-z_]+\}", text):
            piece = piece.strip(" .,:;()'")
            if len(piece) >= 8 and not any(piece in d for d in danish):
                found.add(piece)
    return found


def readable(html: str) -> str:
    html = re.sub(r'<script id="plotly-library">.*?</script>', "", html, flags=re.S)
    return unescape(html).replace("\\u003c", "<").replace("\\u003e", ">")


def test_a_danish_report_has_no_english(sample_reports):
    english = english_only()
    assert len(english) > 100  # the check has teeth
    pages = [p for p in sample_reports["annual"].rglob("*.html")] + \
        [sample_reports["monthly"] / "index.html", sample_reports["monthly"] /
         "hospital_H401" / "index.html"]
    assert len(pages) >= 5
    for page in pages:
        text = readable(page.read_text(encoding="utf-8"))
        # whole words only: a column name such as mobilised_at is code, not English prose
        leaked = sorted(e for e in english if e in text and re.search(
            rf"(?<!\w){re.escape(e)}(?!\w)", text))
        assert not leaked, (page.name, leaked[:5])
