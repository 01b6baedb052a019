"""The case-mix models' fit: a binomial GLM with logit link on grouped data, by IRLS.

statsmodels' GLM fits exactly this, and the tests hold this fit to it (coefficients,
standard errors, predictions). It is not imported in a run because importing it
(with SciPy's statistics and pandas) costs 0.5-0.9 s, a sixth of a run at a registry's
typical size, for a fit that takes milliseconds on a few hundred covariate patterns.
The steps are statsmodels' own: start at mu = (y + 1/2) / 2, weighted least squares
on the working response, stop when the deviance changes by at most ``tol`` (or, with
millions of records per pattern, when the coefficients stop moving; see fit_logistic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.intervals import Z95

EPS = np.finfo(float).eps
# A coefficient step this small (relative) is rounding: the fit has converged.
STEP_TOLERANCE = 1e-10


@dataclass(frozen=True)
class LogisticFit:
    params: np.ndarray
    std_errors: np.ndarray
    converged: bool

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _inverse_logit(X @ self.params)

    def conf_int(self) -> np.ndarray:
        """95 % Wald intervals, one row (low, high) per coefficient."""
        return np.column_stack([self.params - Z95 * self.std_errors,
                                self.params + Z95 * self.std_errors])


def _inverse_logit(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-eta))


def _variance(mu: np.ndarray) -> np.ndarray:
    """mu (1 - mu), with mu kept a machine epsilon inside (0, 1) as statsmodels' link does."""
    clean = np.clip(mu, EPS, 1 - EPS)
    return clean * (1 - clean)


def _deviance(y: np.ndarray, mu: np.ndarray, n: np.ndarray) -> float:
    """Binomial deviance of proportions ``y`` of ``n`` trials (statsmodels' formula: the
    ratios floored at machine epsilon, so y = 0 or 1 contribute their finite part)."""
    events = np.clip(y / (mu + 1e-20), EPS, np.inf)
    non_events = np.clip((1.0 - y) / (1.0 - mu + 1e-20), EPS, np.inf)
    return float(np.sum(2 * n * (y * np.log(events) + (1 - y) * np.log(non_events))))


def fit_logistic(X: np.ndarray, events: np.ndarray, n: np.ndarray, tol: float = 1e-10,
                 max_iterations: int = 100) -> LogisticFit:
    """Maximum-likelihood coefficients for ``events`` out of ``n`` per row of ``X`` (each row
    a covariate pattern), with standard errors from the inverse information at the fit.

    Converged: the deviance changed by at most ``tol`` (statsmodels' rule, so at a registry's
    size the iterations are statsmodels' own), or no coefficient moved by more than
    ``STEP_TOLERANCE`` of its size. The second rule is needed from about a million records
    per pattern: there the deviance's own rounding noise exceeds ``tol``, and whether the
    first rule is ever met is decided by rounding (in either direction)."""
    y = events / n
    mu = (y + 0.5) / 2
    clean = np.clip(mu, EPS, 1 - EPS)
    eta = np.log(clean / (1.0 - clean))
    deviance = _deviance(y, mu, n)
    converged = False
    params = np.full(X.shape[1], np.inf)
    for _ in range(max_iterations):
        variance = _variance(mu)
        weights = n * variance  # 1 / (link'(mu)^2 V(mu)), times the trials
        working = eta + (y - mu) / variance
        root = np.sqrt(weights)
        previous_params = params
        params = np.linalg.lstsq(X * root[:, None], working * root, rcond=None)[0]
        eta = X @ params
        mu = _inverse_logit(eta)
        previous, deviance = deviance, _deviance(y, mu, n)
        step = np.max(np.abs(params - previous_params) / (1 + np.abs(params)))
        if abs(deviance - previous) <= tol or step <= STEP_TOLERANCE:
            converged = True
            break
    # The information at the fitted probabilities (statsmodels takes the previous iteration's,
    # which moves its standard errors by up to ~1e-7 with where its iterations stop), inverted
    # through the weighted design's SVD as statsmodels does: forming X'WX first would square
    # the condition number, and a category whose every record has the event (weight ~1e-13)
    # would get a NaN or zero standard error.
    inverse = np.linalg.pinv(X * np.sqrt(n * _variance(mu))[:, None])
    return LogisticFit(params, np.sqrt(np.diag(inverse @ inverse.T)), converged)


def independent_columns(X: np.ndarray) -> list[int]:
    """The columns of ``X`` that are not linear combinations of columns before them: an
    aliased term (two case-mix variables that always move together) is left out, as R's glm
    leaves it out (its coefficient NA); the fitted probabilities do not change."""
    kept: list[int] = []
    for column in range(X.shape[1]):
        if np.linalg.matrix_rank(X[:, kept + [column]]) > len(kept):
            kept.append(column)
    return kept
