"""Words and number formats of the reports, one message catalogue per language.

Every user-visible text lives in ``reports/messages/<language>.yaml`` (indicator
titles and rationales too); a language is added by adding one file with every
key of the Danish one. A key missing from a catalogue is an error, never a
fallback to another language: a Danish report must not carry English.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
REFERENCE_LANGUAGE = "da"  # the complete catalogue the others are checked against


class MissingMessage(KeyError):
    """A text the catalogue of a language lacks."""


class Messages(dict):
    """One language's texts; a missing key raises and names the language and key."""

    language = "?"

    def __missing__(self, key):
        raise MissingMessage(f"message catalogue {self.language}.yaml has no {key!r}")

    def __getattr__(self, key):  # Jinja reads t.key
        try:
            return self[key]
        except MissingMessage as problem:
            raise AttributeError(str(problem)) from None


def _wrap(value, language: str):
    if isinstance(value, dict):
        out = Messages({k: _wrap(v, language) for k, v in value.items()})
        out.language = language
        return out
    return value


@lru_cache(maxsize=None)
def catalogue(language: str) -> Messages:
    path = MESSAGES_DIR / f"{language}.yaml"
    if not path.is_file():
        raise MissingMessage(f"no message catalogue {language}.yaml (have: "
                             f"{', '.join(languages())})")
    data = yaml.load(path.read_text(encoding="utf-8"),  # noqa: S506 - a safe loader (libyaml's)
                     Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    # a level declared as data (schemas/levels.yaml) is named there until translated here
    from schemas.declarations import LEVELS

    for name, level in LEVELS.levels.items():
        data.setdefault(name, level.title_in(language))
        data.setdefault("level_names", {}).setdefault(name, level.title_in(language))
    return _wrap(data, language)


def languages() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in MESSAGES_DIR.glob("*.yaml")))


def missing_keys(language: str, reference: str = REFERENCE_LANGUAGE) -> list[str]:
    """Dotted keys the reference catalogue has and ``language`` lacks (or leaves empty)."""

    def walk(ref, other, prefix):
        for key, value in ref.items():
            where = f"{prefix}{key}"
            if key not in other or other[key] in (None, ""):
                yield where
            elif isinstance(value, dict):
                yield from walk(value, other[key] if isinstance(other[key], dict) else {},
                                where + ".")

    return list(walk(catalogue(reference), catalogue(language), ""))


class _Text(dict):
    """``TEXT[language]``: the catalogue, loaded on first use."""

    def __missing__(self, language):
        self[language] = catalogue(language)
        return self[language]

    def __contains__(self, language):
        return language in languages()


TEXT = _Text()


_OWN_WORDS: dict[str, dict] = {}  # indicators that carry their own title (added as data)


def remember_own_words(indicator_id: str, title: dict[str, str], rationale: str,
                       missing_field: str | None) -> None:
    """An indicator added as data may carry its title and rationale in its own file until a
    translator puts them in the catalogues; the catalogues win where they have them."""
    _OWN_WORDS[indicator_id] = {"title": title, "rationale": rationale,
                                "missing_field": missing_field or ""}


def indicator_words(indicator_id: str, language: str) -> dict:
    """title, rationale, not_met and missing of an indicator in ``language``."""
    texts = catalogue(language)
    if indicator_id in texts["indicators"] or indicator_id not in _OWN_WORDS:
        return texts["indicators"][indicator_id]  # raises MissingMessage when unknown
    own = _OWN_WORDS[indicator_id]
    return {"title": own["title"].get(language) or own["title"]["en"],
            "rationale": own["rationale"], "not_met": texts["reason_not_met"],
            "missing": texts["reason_missing"].format(field=own["missing_field"])}


def indicator_title(indicator_id: str, language: str) -> str:
    return indicator_words(indicator_id, language)["title"]


def indicator_rationale(indicator_id: str, language: str) -> str:
    return " ".join(indicator_words(indicator_id, language)["rationale"].split())


def number(value, language: str = "da", decimals: int = 1) -> str:
    if value is None:
        return "–"
    fmt = catalogue(language)["number_format"]
    text = f"{value:,.{decimals}f}"
    return (text.replace(",", "\0").replace(".", fmt["decimal"])
            .replace("\0", fmt["thousands"]))


def percent(value, language: str = "da", decimals: int = 1) -> str:
    return "–" if value is None else f"{number(value * 100, language, decimals)}\u00a0%"


def count(value, language: str = "da") -> str:
    return "–" if value is None else number(value, language, 0)
