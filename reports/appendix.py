"""An indicator's definition in the words of the report's language (the appendix).

The same facts as pipelines.catalogue (which renders the English catalogue for
developers), phrased from the message catalogue; conditions written as SQL stay
as written, shown as code.
"""

from __future__ import annotations

from pipelines.definitions import All, AnyOf, Criterion, Definition, Linked, Not, OnOrBefore, Within
from reports.labels import TEXT, indicator_rationale, indicator_title, number


def describe(criterion: Criterion, language: str) -> str:
    w = TEXT[language]["words"]
    if isinstance(criterion, str):
        return "«" + " ".join(criterion.split()) + "»"
    if isinstance(criterion, Within):
        c = criterion.within
        length = (f"{c.minutes} {w['minutes']}" if c.minutes is not None else
                  f"{c.hours} {w['hours']}" if c.hours is not None else f"{c.days} {w['days']}")
        return w["within"].format(to=c.to, length=length, start=c.from_)
    if isinstance(criterion, OnOrBefore):
        b = criterion.on_or_before
        plus = f" + {b.days} {w['days']}" if b.days else ""
        return w["on_or_before"].format(event=b.event, anchor=b.anchor, plus=plus)
    if isinstance(criterion, All):
        return f" {w['and']} ".join(f"({describe(c, language)})" for c in criterion.all)
    if isinstance(criterion, AnyOf):
        return f" {w['or']} ".join(f"({describe(c, language)})" for c in criterion.any)
    if isinstance(criterion, Not):
        return f"{w['not']} ({describe(criterion.not_, language)})"
    if isinstance(criterion, Linked):
        link = criterion.linked
        return w["linked"].format(registry=link.registry, key=link.key,
                                  where=describe(link.where, language))
    raise TypeError(criterion)


def appendix_facts(d: Definition, language: str) -> dict:
    w = TEXT[language]["words"]
    sign = "≤" if d.standard.lower_is_better else "≥"
    standard = (f"{sign} {number(d.standard.value, language, 0)} {w['minutes']}"
                if d.type == "median" else f"{sign} {number(d.standard.value * 100, language, 0)} %")
    return {
        "id": d.id, "title": indicator_title(d.id, language),
        "population": describe(d.population, language),
        "denominator": [describe(c, language) for c in d.denominator],
        "exclusions": [describe(c, language) for c in d.exclusions],
        "follow_up": w["follow_up"].format(days=d.follow_up.days, start=d.follow_up.from_)
        if d.follow_up else None,
        "numerator": describe(d.numerator, language) if d.numerator is not None else None,
        "median": w["median"].format(start=d.median_minutes.from_, end=d.median_minutes.to)
        if d.median_minutes else None,
        "completeness": w["completeness"].format(
            registry=d.completeness.registry, same=f" {w['and']} ".join(d.completeness.same),
            days=d.completeness.days) if d.completeness else None,
        "missing_field": d.missing_field,
        "standard": standard,
        "case_mix": [w["case_mix_variable"].format(
            name=v.name, categories=", ".join(c.label for c in v.categories),
            reference=v.categories[0].label) for v in d.risk_adjustment.case_mix]
        if d.risk_adjustment else [],
        "rationale": indicator_rationale(d.id, language),
    }
