"""Plotly figures of the reports: caterpillar, funnel, run chart, O/E funnel.

Colours are the Okabe-Ito palette, safe for colour-blind readers; every figure
has a title, axis labels and a note saying what its intervals mean.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
from scipy import stats

from reports.labels import TEXT

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000"]
LABEL_COLOURS = {"high (99.8 %)": "#D55E00", "high (95 %)": "#E69F00",
                 "not significant": "#0072B2", "low (95 %)": "#56B4E9",
                 "low (99.8 %)": "#009E73"}


def _layout(fig: go.Figure, title: str, x: str, y: str, note: str, percent_axis: bool = True,
            bottom: int = 110) -> go.Figure:
    height = 350 + bottom
    fig.update_layout(
        title={"text": title, "x": 0}, template="plotly_white", height=height,
        xaxis_title=x, yaxis_title=y, margin={"b": bottom, "t": 60},
        legend={"orientation": "h", "y": -0.25 * 460 / height},
        annotations=[{"text": note, "xref": "paper", "yref": "paper", "x": 0,
                      "y": -(bottom - 25) / 350, "showarrow": False, "align": "left",
                      "font": {"size": 11}}])
    if percent_axis:
        fig.update_yaxes(tickformat=".0%")
    return fig


def caterpillar(units: pl.DataFrame, national: float | None, standard: float | None,
                title: str, language: str) -> go.Figure:
    t = TEXT[language]
    units = units.sort("proportion")
    fig = go.Figure(go.Scatter(
        x=units["unit_name"].to_list(), y=units["proportion"].to_list(), mode="markers",
        marker={"color": OKABE_ITO[0], "size": 8}, name=t["proportion"],
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
    return _layout(fig, title, "", t["proportion"], t["ci_note"], bottom=230)


def funnel(units: pl.DataFrame, curves: pl.DataFrame, title: str, language: str) -> go.Figure:
    t = TEXT[language]
    fig = go.Figure()
    n = curves["n"].to_list()
    for level, dash in (("95", "dash"), ("99.8", "solid")):
        for side in ("lower", "upper"):
            fig.add_trace(go.Scatter(x=n, y=curves[f"{side}_{level}"].to_list(), mode="lines",
                                     line={"color": "#777777", "dash": dash, "width": 1},
                                     name=f"{level} %", showlegend=side == "lower"))
    fig.add_trace(go.Scatter(x=n, y=curves["national_proportion"].to_list(), mode="lines",
                             line={"color": OKABE_ITO[7], "dash": "dot"}, name=t["national"]))
    for name, group in units.group_by("label"):
        fig.add_trace(go.Scatter(
            x=group["denominator"].to_list(), y=group["proportion"].to_list(), mode="markers",
            marker={"color": LABEL_COLOURS[name[0]], "size": 9}, name=name[0],
            text=group["unit_name"].to_list(), hovertemplate="%{text}: %{y:.1%} (n=%{x})"))
    fig.update_xaxes(type="log")
    return _layout(fig, title, t["denominator"], t["proportion"], t["funnel_note"])


def run_chart(series: pl.DataFrame, centre: dict[str, float], title: str, language: str,
              percent_axis: bool = True) -> go.Figure:
    """``series``: unit_name, period, proportion; one line per unit with its median."""
    t = TEXT[language]
    fig = go.Figure()
    for i, (name, group) in enumerate(series.sort("period").group_by("unit_name",
                                                                      maintain_order=True)):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        fig.add_trace(go.Scatter(x=group["period"].to_list(), y=group["value"].to_list(),
                                 mode="lines+markers", name=name[0], line={"color": colour}))
        if name[0] in centre:
            fig.add_trace(go.Scatter(x=group["period"].to_list(),
                                     y=[centre[name[0]]] * group.height, mode="lines",
                                     line={"color": colour, "dash": "dot", "width": 1},
                                     showlegend=False, hoverinfo="skip"))
    return _layout(fig, title, "", t["proportion"] if percent_axis else t["median"],
                   t["run_note"], percent_axis)


def oe_funnel(units: pl.DataFrame, title: str, language: str) -> go.Figure:
    """O/E against expected events, with exact Poisson limits around 1."""
    t = TEXT[language]
    top = max(float(units["expected"].max() or 1) * 1.2, 2)
    grid = np.geomspace(0.5, top, 200)
    fig = go.Figure()
    for level, alpha, dash in (("95", 0.05, "dash"), ("99.8", 0.002, "solid")):
        low = stats.chi2.ppf(alpha / 2, 2 * grid) / 2 / grid
        high = stats.chi2.ppf(1 - alpha / 2, 2 * (grid + 1)) / 2 / grid
        for side, values in (("lower", low), ("upper", high)):
            fig.add_trace(go.Scatter(x=grid.tolist(), y=values.tolist(), mode="lines",
                                     line={"color": "#777777", "dash": dash, "width": 1},
                                     name=f"{level} %", showlegend=side == "lower"))
    fig.add_hline(y=1, line={"color": OKABE_ITO[7], "dash": "dot"})
    fig.add_trace(go.Scatter(x=units["expected"].to_list(), y=units["oe_ratio"].to_list(),
                             mode="markers", marker={"color": OKABE_ITO[0], "size": 9},
                             text=units["unit_name"].to_list(), name=t["hospital"],
                             hovertemplate="%{text}: O/E %{y:.2f} (E=%{x:.1f})"))
    fig.update_xaxes(type="log")
    return _layout(fig, title, t["expected"], t["oe"], t["oe_note"], percent_axis=False)
