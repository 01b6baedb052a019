"""The indicator catalogue as documentation, rendered from the definitions themselves."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader

from pipelines.definitions import (
    All, AnyOf, Criterion, Definition, Linked, Not, OnOrBefore, Within,
)

LEVEL_NAMES = {"national": "national", "region": "region", "hospital": "hospital",
               "municipality": "municipality"}


def describe(criterion: Criterion) -> str:
    """A criterion in words an analyst reads back."""
    if isinstance(criterion, str):
        return " ".join(criterion.split())
    if isinstance(criterion, Within):
        w = criterion.within
        length = (f"{w.minutes} minutes" if w.minutes is not None else
                  f"{w.hours} hours" if w.hours is not None else f"{w.days} days")
        return f"{w.to} within {length} of {w.from_}"
    if isinstance(criterion, OnOrBefore):
        b = criterion.on_or_before
        plus = f" + {b.days} days" if b.days else ""
        return f"{b.event} on or before the date of {b.anchor}{plus}"
    if isinstance(criterion, All):
        return " and ".join(f"({describe(c)})" for c in criterion.all)
    if isinstance(criterion, AnyOf):
        return " or ".join(f"({describe(c)})" for c in criterion.any)
    if isinstance(criterion, Not):
        return f"not ({describe(criterion.not_)})"
    if isinstance(criterion, Linked):
        link = criterion.linked
        return (f"a {link.registry} record with {link.key} = this record_id where "
                f"{describe(link.where)}")
    raise TypeError(criterion)


def facts(d: Definition) -> dict:
    """The definition as plain text fields, for documentation and report appendices."""
    standard = d.standard
    unit = "minutes" if d.type == "median" else "%"
    value = f"{standard.value:g}" if d.type == "median" else f"{standard.value * 100:g}"
    sign = "≤" if standard.lower_is_better else "≥"
    out = {
        "id": d.id, "version": d.version, "title_da": d.title.da, "title_en": d.title.en,
        "registry": d.registry, "type": d.type, "levels": ", ".join(d.levels),
        "population": describe(d.population),
        "denominator": [describe(c) for c in d.denominator],
        "exclusions": [describe(c) for c in d.exclusions],
        "follow_up": (f"{d.follow_up.days} days from {d.follow_up.from_} (anchor date + "
                      f"{d.follow_up.days} ≤ cutoff)") if d.follow_up else None,
        "numerator": describe(d.numerator) if d.numerator is not None else None,
        "median": (f"median minutes from {d.median_minutes.from_} to {d.median_minutes.to}"
                   if d.median_minutes else None),
        "completeness": (f"a current {d.completeness.registry} record with the same "
                         f"{' and '.join(d.completeness.same)} within ±{d.completeness.days} "
                         "day(s) of the contact date" if d.completeness else None),
        "missing_field": d.missing_field,
        "standard": f"{sign} {value} {unit}".replace(" %", " %"),
        "case_mix": [
            f"{v.name} ({', '.join(c.label for c in v.categories)}; reference {v.categories[0].label})"
            for v in d.risk_adjustment.case_mix] if d.risk_adjustment else [],
        "rationale": " ".join(d.rationale.split()),
    }
    return out


def render_markdown(definitions: list[Definition]) -> str:
    env = Environment(loader=PackageLoader("reports", "templates"), trim_blocks=True,
                      lstrip_blocks=True)
    return env.get_template("catalogue.md.j2").render(
        indicators=[facts(d) for d in sorted(definitions, key=lambda d: d.id)])
