"""Risk adjustment: case-mix logistic models, expected counts, O/E, adjusted and smoothed rates.

Every case-mix variable is categorical, so a year's records collapse into a few
hundred covariate patterns; a binomial GLM on (events, non-events) per pattern
has exactly the maximum-likelihood estimates of the record-level logistic
regression, at a fraction of the cost. Expected counts and their variances
(sum of p and of p(1 - p)) are additive: they roll up with the counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl
# scipy.special's functions, which scipy.stats' chi-square calls: scipy.stats itself takes
# half a second to import.
from scipy import special

from pipelines.definitions import CaseMixVariable, Definition
from pipelines.logistic import fit_logistic, independent_columns

log = logging.getLogger("kvalitet.risk")

MIN_DENOMINATOR = 3  # units with a denominator <= 2 get no adjusted or smoothed value


def canonical_sum(values: pl.Expr) -> pl.Expr:
    """A float sum in sorted order: a parallel group-by's order varies between runs, and
    identical inputs must give identical bytes. (cum_sum keeps the sort, which the query
    optimiser would drop before a plain sum.)"""
    return values.sort().cum_sum().last()


class RiskModelError(Exception):
    """A model that cannot be fitted as specified; the message names indicator, year, variable."""


@dataclass
class ModelFit:
    indicator_id: str
    year: str
    n: int
    events: int
    converged: bool
    c_statistic: float
    hosmer_lemeshow_chi2: float
    hosmer_lemeshow_df: int
    hosmer_lemeshow_p: float
    coefficients: pl.DataFrame = field(repr=False)  # term, estimate, std_error, ci_low, ci_high
    dropped_categories: list[str] = field(default_factory=list)


def label_expression(variable: CaseMixVariable) -> pl.Expr:
    """The index of each record's category for one variable (null if none fits)."""
    column = pl.col(variable.column)
    expr = None
    for index, category in enumerate(variable.categories):
        if category.missing:
            test = column.is_null()
        elif category.values is not None:
            test = column.cast(pl.String).is_in(category.values)
        else:
            low = category.min if category.min is not None else -np.inf
            high = category.max if category.max is not None else np.inf
            test = column.is_between(low, high)
        expr = (pl.when(test) if expr is None else expr.when(test)).then(pl.lit(index, pl.UInt8))
    return expr.otherwise(None).alias(variable.name)


def design(patterns: pl.DataFrame, variables: list[CaseMixVariable], indicator: str, year: str
           ) -> tuple[np.ndarray, list[str], list[str]]:
    """Intercept plus a dummy per non-reference category that has records; refuses a
    category with records but no events."""
    columns, names, dropped = [np.ones(patterns.height)], ["intercept"], []
    for variable in variables:
        present = (patterns.group_by(variable.name)
                   .agg(pl.col("n").sum(), pl.col("events").sum()))
        counts = {r[variable.name]: (r["n"], r["events"]) for r in present.to_dicts()}
        kept = [i for i in range(len(variable.categories)) if counts.get(i, (0, 0))[0] > 0]
        dropped += [f"{variable.name}={c.label}" for i, c in enumerate(variable.categories)
                    if i not in kept]
        for index in kept:
            n, events = counts[index]
            if events == n:
                log.warning("%s %s: every record of case-mix category %s=%s has the event; its "
                            "coefficient is where the fit stopped (the likelihood has no "
                            "maximum) and its expected events equal the observed", indicator,
                            year, variable.name, variable.categories[index].label)
            if events == 0:
                raise RiskModelError(
                    f"{indicator} {year}: case-mix variable {variable.name!r}, category "
                    f"{variable.categories[index].label!r} has {n} records but no events; the "
                    "model cannot be fitted (merge the category with a neighbour in the "
                    "definition)")
        codes = patterns[variable.name].to_numpy()
        for index in kept[1:]:  # the first category with records is the reference
            columns.append((codes == index).astype(float))
            names.append(f"{variable.name}[{variable.categories[index].label}]")
    return np.column_stack(columns), names, dropped


def tied(p: np.ndarray) -> np.ndarray:
    """Risks as compared for ties: patterns of equal risk in exact arithmetic (twin categories,
    a variable without effect) differ in their last bits, which must not order them."""
    return np.round(p, 12)


def c_statistic(p: np.ndarray, events: np.ndarray, n: np.ndarray) -> float:
    """Area under the ROC curve from patterns: P(p_event > p_non-event), ties count half."""
    p = tied(p)
    order = np.argsort(p, kind="stable")
    p, events, non_events = p[order], events[order].astype(float), (n - events)[order].astype(float)
    unique, groups = np.unique(p, return_inverse=True)
    ev = np.bincount(groups, events, len(unique))
    ne = np.bincount(groups, non_events, len(unique))
    below = np.cumsum(ne) - ne
    total = ev.sum() * ne.sum()
    return float((ev * below + 0.5 * ev * ne).sum() / total) if total else float("nan")


def hosmer_lemeshow(p: np.ndarray, events: np.ndarray, n: np.ndarray, groups: int = 10
                    ) -> tuple[float, int, float]:
    """Groups cut at the deciles of the records' predicted risk (ties, as ``tied`` compares
    them, stay together, as in R's ResourceSelection::hoslem.test); chi-square with
    groups - 2 degrees of freedom."""
    risk = tied(p)
    order = np.argsort(risk, kind="stable")
    p, risk, events, n = p[order], risk[order], events[order], n[order]
    cumulative = np.cumsum(n) / n.sum()
    cuts = np.unique(np.array([risk[np.searchsorted(cumulative, q)] if q < 1 else risk[-1]
                               for q in np.linspace(0, 1, groups + 1)]))
    group = np.clip(np.searchsorted(cuts, risk, side="left") - 1, 0, None) if len(cuts) > 1 \
        else np.zeros(len(p), int)
    chi2 = 0.0
    used = 0
    for g in np.unique(group):
        mask = group == g
        observed, size = events[mask].sum(), n[mask].sum()
        expected = (p[mask] * n[mask]).sum()
        if size and 0 < expected < size:
            chi2 += (observed - expected) ** 2 / (expected * (1 - expected / size))
            used += 1
    df = max(used - 2, 1)
    return float(chi2), df, float(special.chdtrc(df, chi2))  # = scipy.stats.chi2.sf


def fit_year(patterns: pl.DataFrame, definition: Definition, year: str) -> tuple[np.ndarray, ModelFit]:
    """Predicted probability per pattern row, and the model's statistics."""
    variables = definition.risk_adjustment.case_mix
    X, names, dropped = design(patterns, variables, definition.id, year)
    events = patterns["events"].to_numpy().astype(float)
    n = patterns["n"].to_numpy().astype(float)
    kept = independent_columns(X)
    aliased = [name for i, name in enumerate(names) if i not in kept]
    if aliased:
        log.warning("%s %s: case-mix terms %s always move with other terms (aliased); left "
                    "out of the model, as R's glm leaves them out", definition.id, year,
                    ", ".join(aliased))
    with np.errstate(all="ignore"):  # a separated model overflows on its way out; refused below
        result = fit_logistic(X[:, kept], events, n, tol=1e-10)  # 1e-12: float noise at millions
    converged = result.converged and bool(np.all(np.isfinite(result.params)))
    if not converged or np.any(np.abs(result.params) > 30):
        raise RiskModelError(f"{definition.id} {year}: the case-mix model did not converge "
                             f"(terms {', '.join(names)}); check for separation")
    p = result.predict(X[:, kept])
    ci = result.conf_int()
    coefficients = pl.DataFrame({
        "term": [names[i] for i in kept], "estimate": result.params,
        "std_error": result.std_errors, "ci_low": ci[:, 0], "ci_high": ci[:, 1],
        "odds_ratio": np.exp(result.params),
    })
    dropped = dropped + [f"{name} (aliased)" for name in aliased]
    chi2, df, p_value = hosmer_lemeshow(p, events, n)
    fit = ModelFit(definition.id, year, int(n.sum()), int(events.sum()), converged,
                   c_statistic(p, events, n), chi2, df, p_value, coefficients, dropped)
    return p, fit


def expected_cells(records: pl.LazyFrame | pl.DataFrame, definition: Definition,
                   grain: list[str]) -> tuple[pl.DataFrame, list[ModelFit]]:
    """Expected events and their variance per grain cell, each year by its own model.

    ``records``: the indicator's denominator records with the grain columns, ``year``,
    ``outcome`` (bool) and the case-mix columns."""
    return expected_from_patterns(pattern_counts(records, definition, grain), definition, grain)


def pattern_counts(records: pl.LazyFrame | pl.DataFrame, definition: Definition,
                   grain: list[str]) -> pl.DataFrame:
    """Records and events per grain cell, year and covariate pattern: additive, so the engine
    may count part of the records at a time and add the parts up before the models are fitted."""
    variables = definition.risk_adjustment.case_mix
    names = [v.name for v in variables]
    records = records.lazy().with_columns(label_expression(v) for v in variables)
    cells = (records.group_by(*grain, "year", *names)
             .agg(pl.len().alias("n"), pl.col("outcome").sum().alias("events"))
             .collect())
    for v in variables:
        if cells[v.name].null_count():
            value = records.filter(pl.col(v.name).is_null()).select(v.column).head(1).collect()
            raise RiskModelError(f"{definition.id}: {v.column} = {value.item()!r} fits no "
                                 f"category of case-mix variable {v.name!r}")
    return cells


def expected_from_patterns(cells: pl.DataFrame, definition: Definition, grain: list[str]
                           ) -> tuple[pl.DataFrame, list[ModelFit]]:
    """Each year's model fitted on its covariate patterns; expected events and their variance
    per grain cell."""
    names = [v.name for v in definition.risk_adjustment.case_mix]
    patterns = cells.group_by("year", *names).agg(pl.col("n", "events").sum()).sort("year", *names)
    predicted, fits = [], []
    for (year,), part in patterns.group_by("year", maintain_order=True):
        year = str(year)
        if part["events"].sum() == 0:
            log.warning("%s %s: no events in the year, so no case-mix model and no expected "
                        "counts", definition.id, year)
            continue
        p, fit = fit_year(part, definition, year)
        predicted.append(part.select("year", *names).with_columns(pl.Series("p", p)))
        fits.append(fit)
    if not predicted:
        return pl.DataFrame(schema={**{k: cells.schema[k] for k in grain},
                                    "expected": pl.Float64, "variance": pl.Float64}), fits
    probabilities = pl.concat(predicted)
    n, p = pl.col("n"), pl.col("p")
    expected = (cells.join(probabilities, on=["year", *names], how="left")
                .group_by(*grain).agg(canonical_sum(n * p).alias("expected"),
                                      canonical_sum(n * p * (1 - p)).alias("variance")))
    return expected, fits


def poisson_interval(observed: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson count: half the chi-square quantiles, which are
    2 * gammaincinv(df / 2, q) (as scipy.stats.chi2.ppf computes them), so the gamma quantile
    of the count itself."""
    observed = np.asarray(observed, float)
    with np.errstate(all="ignore"):
        low = np.where(observed > 0, special.gammaincinv(observed, alpha / 2), 0.0)
    high = special.gammaincinv(observed + 1, 1 - alpha / 2)
    return low, high


def adjust(rows: pl.DataFrame) -> pl.DataFrame:
    """O/E, adjusted and smoothed proportions for risk-adjusted rows (others pass through).

    ``rows`` carries numerator, denominator, expected, variance and the national
    proportion of the row's indicator and period (``national_proportion``)."""
    low, high = poisson_interval(rows["numerator"].fill_null(0).to_numpy())
    rows = rows.with_columns(pl.Series("poisson_low", low), pl.Series("poisson_high", high))
    has_model = pl.col("expected").is_not_null() & (pl.col("expected") > 0)
    big_enough = pl.col("denominator") >= MIN_DENOMINATOR
    p_bar = pl.col("national_proportion")
    rows = rows.with_columns(
        pl.when(has_model).then(pl.col("numerator") / pl.col("expected")).alias("oe_ratio"),
        pl.when(has_model).then(pl.col("poisson_low") / pl.col("expected")).alias("oe_low"),
        pl.when(has_model).then(pl.col("poisson_high") / pl.col("expected")).alias("oe_high"),
    ).with_columns(
        pl.when(has_model & big_enough).then(pl.col("oe_ratio") * p_bar).alias("adjusted_proportion"),
        pl.when(has_model & big_enough).then(pl.col("oe_low") * p_bar).alias("adjusted_low"),
        pl.when(has_model & big_enough).then(pl.col("oe_high") * p_bar).alias("adjusted_high"),
        # Sampling (noise) variance of the adjusted rate: p_bar^2 * Var(O) / E^2.
        pl.when(has_model & big_enough)
        .then(p_bar ** 2 * pl.col("variance") / pl.col("expected") ** 2).alias("noise_variance"),
    )
    return smooth(rows).drop("poisson_low", "poisson_high", "noise_variance")


def smooth(rows: pl.DataFrame) -> pl.DataFrame:
    """Reliability-weighted (empirical Bayes) rates, as AHRQ's QI software does:
    smoothed = w * adjusted + (1 - w) * national, w = signal / (signal + noise).

    The signal variance (between-unit variance of the true adjusted rates) is a
    method-of-moments estimate per indicator, level and period, over the units
    with an adjusted rate: the denominator-weighted variance of the adjusted rates
    around the national proportion minus their weighted mean noise variance,
    floored at 0 (then every unit shrinks fully to the national rate)."""
    keys = ["indicator_id", "period_type", "period", "level"]
    usable = pl.col("adjusted_proportion").is_not_null() & (pl.col("level") != "national")
    weight = pl.col("denominator").cast(pl.Float64)
    spread = weight * (pl.col("adjusted_proportion") - pl.col("national_proportion")) ** 2
    signal = (rows.filter(usable).group_by(keys).agg(
        (canonical_sum(spread) / weight.sum()
         - canonical_sum(weight * pl.col("noise_variance")) / weight.sum())
        .clip(lower_bound=0).alias("signal_variance")))
    rows = rows.join(signal, on=keys, how="left")
    reliability = pl.col("signal_variance") / (pl.col("signal_variance") + pl.col("noise_variance"))
    national = pl.col("level") == "national"
    return rows.with_columns(
        pl.when(national).then(pl.col("adjusted_proportion"))
        .when(pl.col("adjusted_proportion").is_not_null())
        .then(pl.when(pl.col("noise_variance") > 0)
              .then(reliability.fill_nan(0) * pl.col("adjusted_proportion")
                    + (1 - reliability.fill_nan(0)) * pl.col("national_proportion"))
              .otherwise(pl.col("adjusted_proportion")))
        .alias("smoothed_proportion")
    ).drop("signal_variance")
