"""Plotly figures of the reports: caterpillar, funnel, run chart, O/E funnel, P′ chart.

Colours are the Okabe-Ito palette, safe for colour-blind readers; every figure
has a title, axis labels and one note saying what its intervals mean. Numbers
on axes and in hover texts use the language's decimal mark (Plotly's
``separators``).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
from scipy import stats

from reports.labels import TEXT
from reports.pchart import p_prime
from reports.run_chart import anhoej, long_runs

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000"]
LABEL_COLOURS = {"high (99.8 %)": "#D55E00", "high (95 %)": "#E69F00",
                 "not significant": "#0072B2", "low (95 %)": "#56B4E9",
                 "low (99.8 %)": "#009E73"}
SIGNAL = "#D55E00"  # an Anhøj signal or a point outside control limits
ROLE_COLOURS = {"unit": OKABE_ITO[0], "region": OKABE_ITO[1], "national": OKABE_ITO[7]}


def label_text(label: str, language: str) -> str:
    """A funnel label ('high (95 %)') in the report's language."""
    return TEXT[language]["signal_labels"][label]


def layout(title: str, x: str, y: str, note: str, language: str, percent_axis: bool = True,
           bottom: int = 110) -> dict:
    """Title, axes, legend and the note, once, left-aligned under the plot (a plain dict:
    Plotly's objects cost ~50 ms a figure, too much for 100 deliveries of 16 charts)."""
    height = 350 + bottom
    fmt = TEXT[language]["number_format"]
    grid = {"showgrid": True, "gridcolor": "#EBF0F8", "zeroline": False, "linecolor": "#EBF0F8",
            "automargin": True}
    return {
        "title": {"text": title, "x": 0}, "height": height,
        "plot_bgcolor": "white", "paper_bgcolor": "white", "font": {"color": "#2a3f5f"},
        "hoverlabel": {"align": "left"},
        "xaxis": {"title": {"text": x}, **grid},
        "yaxis": {"title": {"text": y}, **grid, **({"tickformat": ".1~%"} if percent_axis else {})},
        "margin": {"b": bottom, "t": 60, "l": 70},
        "legend": {"orientation": "h", "y": -0.25 * 460 / height},
        "separators": fmt["decimal"] + fmt["thousands"],
        "annotations": [{"text": note, "xref": "paper", "yref": "paper", "x": 0, "xanchor": "left",
                         "y": -(bottom - 25) / 350, "yanchor": "bottom", "showarrow": False,
                         "align": "left", "font": {"size": 11}, "name": "note"}]}


def _layout(fig: go.Figure, title: str, x: str, y: str, note: str, language: str,
            percent_axis: bool = True, bottom: int = 110) -> go.Figure:
    spec = layout(title, x, y, note, language, percent_axis, bottom)
    notes = spec.pop("annotations")
    fig.update_layout(template=None, **spec)
    for a in notes:
        fig.add_annotation(**a)
    return fig


def caterpillar(units: pl.DataFrame, national: float | None, standard: float | None,
                title: str, language: str, note: str) -> go.Figure:
    t = TEXT[language]
    units = units.sort("proportion")
    fig = go.Figure(go.Scatter(
        x=units["unit_name"].to_list(), y=units["proportion"].to_list(), mode="markers",
        marker={"color": OKABE_ITO[0], "size": 8}, name=t["proportion"],
        hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        error_y={"type": "data", "symmetric": False,
                 "array": (units["ci_high"] - units["proportion"]).to_list(),
                 "arrayminus": (units["proportion"] - units["ci_low"]).to_list(),
                 "color": OKABE_ITO[0]}))
    if national is not None:
        fig.add_hline(y=national, line={"color": OKABE_ITO[7], "dash": "dot"},
                      annotation_text=t["national"])
    if standard is not None:
        fig.add_hline(y=standard, line={"color": OKABE_ITO[3], "dash": "dash"},
                      annotation_text=t["standard"])
    return _layout(fig, title, "", t["proportion"], note, language, bottom=230)


def funnel(units: pl.DataFrame, curves: pl.DataFrame, title: str, language: str) -> go.Figure:
    t = TEXT[language]
    fig = go.Figure()
    n = curves["n"].to_list()
    for level, dash in (("95", "dash"), ("99.8", "solid")):
        for side in ("lower", "upper"):
            fig.add_trace(go.Scatter(x=n, y=curves[f"{side}_{level}"].to_list(), mode="lines",
                                     line={"color": "#777777", "dash": dash, "width": 1},
                                     name=t[f"limit_{level.replace('.', '_')}"],
                                     showlegend=side == "lower", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=n, y=curves["national_proportion"].to_list(), mode="lines",
                             line={"color": OKABE_ITO[7], "dash": "dot"}, name=t["national"]))
    for label in LABEL_COLOURS:
        group = units.filter(pl.col("label") == label)
        if group.is_empty():
            continue
        fig.add_trace(go.Scatter(
            x=group["denominator"].to_list(), y=group["proportion"].to_list(), mode="markers",
            marker={"color": LABEL_COLOURS[label], "size": 9}, name=label_text(label, language),
            text=group["unit_name"].to_list(),
            hovertemplate="%{text}: %{y:.1%} (n=%{x})<extra></extra>"))
    ticks, text = _log_ticks(1, max(n), language)
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=text)
    return _layout(fig, title, t["denominator"], t["proportion"], t["funnel_note"], language)


def run_chart_spec(series: pl.DataFrame, months: list[str], title: str, language: str,
                   percent_axis: bool = True, colours: dict[str, str] | None = None) -> dict:
    """``series``: unit_name, period, value (null = no data or hidden). One line per unit
    over ``months`` with gaps where a month has no value, its median as the centre line
    (dashed and red when the Anhøj rules signal), and the points of an over-long run
    ringed. ``colours``: unit_name -> colour, so a unit keeps its colour everywhere."""
    t = TEXT[language]
    traces = []
    grid = pl.DataFrame({"period": months})
    names = list(dict.fromkeys(series["unit_name"].to_list()))
    for i, name in enumerate(names):
        colour = (colours or {}).get(name, OKABE_ITO[i % len(OKABE_ITO)])
        own = grid.join(series.filter(pl.col("unit_name") == name).select("period", "value"),
                        on="period", how="left", maintain_order="left")
        values = own["value"].cast(pl.Float64).to_numpy()
        traces.append({"type": "scatter", "x": months, "y": own["value"].to_list(),
                       "mode": "lines+markers", "name": name, "line": {"color": colour},
                       "marker": {"color": colour}, "connectgaps": False, "legendgroup": name})
        if np.isnan(values).all():
            continue
        result = anhoej(values)
        traces.append({
            "type": "scatter", "x": [months[0], months[-1]], "y": [result.centre] * 2,
            "mode": "lines", "line": {"color": SIGNAL if result.signal else colour,
                                      "dash": "dash" if result.signal else "dot",
                                      "width": 1.5 if result.signal else 1},
            "name": f"{name}: {t['centre_line']}" + (f" ({t['signal_word']})" if result.signal
                                                     else ""),
            "showlegend": False, "legendgroup": name, "hoverinfo": "name"})
        marked = long_runs(values)
        if marked.any():
            traces.append({
                "type": "scatter", "x": [m for m, k in zip(months, marked) if k],
                "y": values[marked].tolist(), "mode": "markers",
                "marker": {"symbol": "circle-open", "size": 14, "color": SIGNAL,
                           "line": {"width": 2}},
                "name": t["shift_points"], "legendgroup": name, "showlegend": False,
                "hoverinfo": "skip"})
    spec = layout(title, "", t["proportion"] if percent_axis else t["median"], t["run_note"],
                  language, percent_axis)
    spec["xaxis"].update(month_axis(months, language))
    return {"data": traces, "layout": spec}


def run_chart(series: pl.DataFrame, months: list[str], title: str, language: str,
              percent_axis: bool = True, colours: dict[str, str] | None = None) -> go.Figure:
    return go.Figure(run_chart_spec(series, months, title, language, percent_axis, colours))


def spec_html(spec: dict, div_id: str) -> str:
    """A figure dict as an HTML fragment (plotly.js loaded by the page)."""
    import plotly.io as pio

    return pio.to_html(spec, full_html=False, include_plotlyjs=False, div_id=div_id,
                       validate=False, config={"displaylogo": False})


def month_axis(months: list[str], language: str) -> dict:
    """Months as categories (every month has its place, so a gap stays a gap) labelled in
    the report's language ('jan 2025'), every third month on long axes."""
    names = TEXT[language]["month_names"]
    step = 1 if len(months) <= 12 else 3
    shown = months[::step]
    return {"type": "category", "categoryorder": "array", "categoryarray": months,
            "tickvals": shown, "ticktext": [f"{names[int(m[5:7]) - 1]} {m[:4]}" for m in shown]}


def _log_ticks(low: float, high: float, language: str) -> tuple[list[float], list[str]]:
    """1-2-5 ticks on a log axis, written out in full (Plotly's own log ticks read
    '5 6 7 8 9 1 2')."""
    values = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            v = mantissa * 10.0 ** exponent
            if low <= v <= high:
                values.append(v)
    from reports.labels import number

    return values, [number(v, language, 0 if v >= 1 else 1) for v in values]


def oe_label(observed: float, expected: float) -> str:
    """Where a unit's O/E lies against the exact Poisson limits around 1 at its E."""
    for level, alpha in (("99.8", 0.002), ("95", 0.05)):
        low = stats.chi2.ppf(alpha / 2, 2 * expected) / 2 / expected
        high = stats.chi2.ppf(1 - alpha / 2, 2 * (expected + 1)) / 2 / expected
        ratio = observed / expected
        if ratio > high:
            return f"high ({level} %)"
        if ratio < low:
            return f"low ({level} %)"
    return "not significant"


def oe_funnel(units: pl.DataFrame, title: str, language: str) -> go.Figure:
    """O/E against expected events, with exact Poisson limits around 1; points coloured by
    where they lie; the y-axis spans the units (not the limits at tiny E)."""
    t = TEXT[language]
    low_x = max(min(float(units["expected"].min() or 1) * 0.8, 1.0), 0.1)
    top = max(float(units["expected"].max() or 1) * 1.2, 2)
    grid = np.geomspace(low_x, top, 200)
    fig = go.Figure()
    for level, alpha, dash in (("95", 0.05, "dash"), ("99.8", 0.002, "solid")):
        low = stats.chi2.ppf(alpha / 2, 2 * grid) / 2 / grid
        high = stats.chi2.ppf(1 - alpha / 2, 2 * (grid + 1)) / 2 / grid
        for side, values in (("lower", low), ("upper", high)):
            fig.add_trace(go.Scatter(x=grid.tolist(), y=values.tolist(), mode="lines",
                                     line={"color": "#777777", "dash": dash, "width": 1},
                                     name=t[f"limit_{level.replace('.', '_')}"],
                                     showlegend=side == "lower", hoverinfo="skip"))
    fig.add_hline(y=1, line={"color": OKABE_ITO[7], "dash": "dot"})
    labels = [oe_label(o, e) for o, e in zip(units["numerator"].to_list(),
                                             units["expected"].to_list())]
    units = units.with_columns(pl.Series("label", labels, dtype=pl.String))
    for label in LABEL_COLOURS:
        group = units.filter(pl.col("label") == label)
        if group.is_empty():
            continue
        fig.add_trace(go.Scatter(
            x=group["expected"].to_list(), y=group["oe_ratio"].to_list(), mode="markers",
            marker={"color": LABEL_COLOURS[label], "size": 9}, name=label_text(label, language),
            text=group["unit_name"].to_list(),
            hovertemplate="%{text}: O/E %{y:.2f} (E=%{x:.1f})<extra></extra>"))
    highest = float(units["oe_ratio"].max() or 1)
    fig.update_yaxes(range=[0, max(2.5, highest * 1.15)])
    ticks, text = _log_ticks(low_x, top, language)
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=text,
                     range=[math.log10(low_x), math.log10(top)])
    return _layout(fig, title, t["expected"], t["oe"], t["oe_note"], language,
                   percent_axis=False)


def p_prime_traces(series: pl.DataFrame, months: list[str], language: str,
                   visible: bool = True) -> tuple[list[dict], pl.DataFrame]:
    """The traces of Laney's P′ chart of one unit's months (``series``: period, numerator,
    denominator; hidden months have null counts and are gaps), and the chart's data."""
    t = TEXT[language]
    own = pl.DataFrame({"period": months}).join(series, on="period", how="left",
                                                maintain_order="left")
    chart = p_prime(own["numerator"].cast(pl.Float64).to_numpy(),
                    own["denominator"].cast(pl.Float64).fill_null(0).to_numpy())
    data = own.with_columns(pl.Series("proportion", chart.proportion), pl.lit(chart.centre)
                            .alias("centre"), pl.lit(chart.sigma_z).alias("sigma_z"),
                            pl.Series("lcl", chart.lower), pl.Series("ucl", chart.upper),
                            pl.Series("lcl_95", chart.lower_95), pl.Series("ucl_95", chart.upper_95),
                            pl.Series("outside", chart.outside))
    nan_to_none = lambda a: [None if np.isnan(v) else float(v) for v in a]  # noqa: E731
    limit = {"color": "#777777", "width": 1, "shape": "hvh"}
    traces = [
        {"type": "scatter", "x": months, "y": nan_to_none(chart.upper), "mode": "lines",
         "line": limit, "name": t["ucl"], "connectgaps": False, "hoverinfo": "skip"},
        {"type": "scatter", "x": months, "y": nan_to_none(chart.lower), "mode": "lines",
         "line": limit, "name": t["lcl"], "connectgaps": False, "hoverinfo": "skip"},
        {"type": "scatter", "x": [months[0], months[-1]], "y": [chart.centre] * 2,
         "mode": "lines", "line": {"color": OKABE_ITO[7], "dash": "dot"},
         "name": t["centre_line"]},
        {"type": "scatter", "x": months, "y": nan_to_none(chart.proportion),
         "mode": "lines+markers", "line": {"color": OKABE_ITO[0]}, "name": t["proportion"],
         "connectgaps": False, "marker": {"color": [SIGNAL if o else OKABE_ITO[0]
                                                    for o in chart.outside], "size": 7}},
    ]
    for trace in traces:
        trace["visible"] = visible
    return traces, data


def _p_prime_layout(title: str, months: list[str], language: str) -> dict:
    t = TEXT[language]
    spec = layout(title, "", t["proportion"], t["pchart_note"], language)
    spec["xaxis"].update(month_axis(months, language))
    return spec


def p_prime_chart(series: pl.DataFrame, months: list[str], title: str, language: str
                  ) -> tuple[go.Figure, pl.DataFrame]:
    """One unit's P′ chart, and its data."""
    traces, data = p_prime_traces(series, months, language)
    return go.Figure({"data": traces, "layout": _p_prime_layout(title, months, language)}), data


def p_prime_selector(units: list[tuple[str, pl.DataFrame]], months: list[str], title: str,
                     language: str) -> go.Figure:
    """The P′ charts of many units in one figure: a menu shows one unit at a time."""
    traces, buttons = [], []
    for k, (name, series) in enumerate(units):
        own, _ = p_prime_traces(series, months, language, visible=k == 0)
        traces.extend(own)
    per = 4
    for k, (name, _) in enumerate(units):
        mask = [k * per <= i < (k + 1) * per for i in range(len(traces))]
        buttons.append({"label": name, "method": "update",
                        "args": [{"visible": mask}, {"title.text": f"{title} – {name}"}]})
    spec = _p_prime_layout(f"{title} – {units[0][0]}", months, language)
    spec["updatemenus"] = [{"buttons": buttons, "direction": "down", "x": 1, "xanchor": "right",
                            "y": 1.15, "yanchor": "top", "showactive": True}]
    return go.Figure({"data": traces, "layout": spec})
