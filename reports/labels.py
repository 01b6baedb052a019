"""Words and number formats of the reports, in Danish (default) and English."""

from __future__ import annotations

TEXT = {
    "da": {
        "annual_report": "Årsrapport", "monthly_delivery": "Månedlig levering",
        "overview": "Oversigt", "indicator": "Indikator", "national": "Landsresultat",
        "standard": "Standard", "units_meeting": "Enheder der opfylder standarden",
        "level": "Niveau", "unit": "Enhed", "numerator": "Tæller", "denominator": "Nævner",
        "proportion": "Andel", "ci": "95 % CI", "standard_met": "Standard opfyldt",
        "missing": "Uoplyst", "yes": "ja", "no": "nej", "median": "Median (min)",
        "region": "Region", "hospital": "Hospital", "municipality": "Kommune",
        "caterpillar": "Hospitaler med 95 %-konfidensinterval",
        "funnel": "Tragtplot: andel mod antal patienter",
        "run_chart": "Seriediagram: månedlig andel",
        "oe": "Observeret/forventet (O/E)", "expected": "Forventet",
        "adjusted": "Justeret andel", "smoothed": "Udglattet andel",
        "completeness": "Datakomplethed mod Landspatientregistret",
        "validation": "Datavalidering", "appendix": "Bilag: indikatorbeskrivelser",
        "rows_loaded": "Indlæste rækker", "rows_quarantined": "Afviste rækker",
        "ci_note": "Intervallerne er 95 %-konfidensintervaller (Wilson) for andelen; "
                   "de viser den statistiske usikkerhed ved antallet af patienter.",
        "funnel_note": "Grænserne (95 % og 99,8 %) viser, hvor langt fra landsandelen en "
                       "enhed af den størrelse kan ligge alene ved tilfældighed.",
        "run_note": "Midterlinjen er medianen. Et signal (Anhøj-reglerne: for lang serie "
                    "på samme side eller for få krydsninger) tyder på ikke-tilfældig variation.",
        "oe_note": "O/E = observerede / forventede hændelser efter justering for "
                   "patientsammensætning; eksakt Poisson 95 %-interval.",
        "suppressed_note": "'<5' angiver færre end 5 patienter (diskretionsregel).",
        "complementary_note": ("'..' angiver et tal, der er skjult, for at et '<5' ikke "
                               "kan regnes ud af de øvrige tal (sekundær diskretion). "
                               "Et tal vist som '<5' deles ikke op på måneder eller enheder."),
        "year_vs": "Sammenligning med tidligere år", "signal": "Signal",
        "shift": "forskydning", "crossings": "få krydsninger", "none": "intet",
        "records_not_meeting": "Egne forløb der ikke opfylder indikatoren",
        "own_rejected": "Egne afviste rækker", "last_12_months": "Seneste 12 måneder",
        "minutes": "minutter",
    },
    "en": {
        "annual_report": "Annual report", "monthly_delivery": "Monthly delivery",
        "overview": "Overview", "indicator": "Indicator", "national": "National result",
        "standard": "Standard", "units_meeting": "Units meeting the standard",
        "level": "Level", "unit": "Unit", "numerator": "Numerator",
        "denominator": "Denominator", "proportion": "Proportion", "ci": "95% CI",
        "standard_met": "Standard met", "missing": "Unknown", "yes": "yes", "no": "no",
        "median": "Median (min)", "region": "Region", "hospital": "Hospital",
        "municipality": "Municipality",
        "caterpillar": "Hospitals with 95% confidence intervals",
        "funnel": "Funnel plot: proportion against number of patients",
        "run_chart": "Run chart: monthly proportion",
        "oe": "Observed/expected (O/E)", "expected": "Expected",
        "adjusted": "Adjusted proportion", "smoothed": "Smoothed proportion",
        "completeness": "Data completeness against the National Patient Registry",
        "validation": "Data validation", "appendix": "Appendix: indicator definitions",
        "rows_loaded": "Rows loaded", "rows_quarantined": "Rows rejected",
        "ci_note": "Intervals are 95% confidence intervals (Wilson) of the proportion; "
                   "they show the statistical uncertainty due to the number of patients.",
        "funnel_note": "The limits (95% and 99.8%) show how far from the national proportion "
                       "a unit of that size can lie by chance alone.",
        "run_note": "The centre line is the median. A signal (Anhøj rules: too long a run on "
                    "one side or too few crossings) suggests non-random variation.",
        "oe_note": "O/E = observed / expected events after adjusting for case mix; exact "
                   "Poisson 95% interval.",
        "suppressed_note": "'<5' marks fewer than 5 patients (small-number rule).",
        "complementary_note": ("'..' marks a number hidden so that no '<5' can be worked "
                               "out from the other figures (complementary suppression). "
                               "A number shown as '<5' is not broken down by month or unit."),
        "year_vs": "Compared with earlier years", "signal": "Signal", "shift": "shift",
        "crossings": "few crossings", "none": "none",
        "records_not_meeting": "Own records not meeting the indicator",
        "own_rejected": "Own rejected rows", "last_12_months": "Last 12 months",
        "minutes": "minutes",
    },
}


def number(value, language: str = "da", decimals: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:,.{decimals}f}"
    if language == "da":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def percent(value, language: str = "da", decimals: int = 1) -> str:
    return "–" if value is None else f"{number(value * 100, language, decimals)}\u00a0%"


def count(value, language: str = "da") -> str:
    return "–" if value is None else number(value, language, 0)
