-- Grain: one row per risk-adjusted indicator x year: the case-mix model's fit.
CREATE TABLE IF NOT EXISTS risk_models (
    indicator_id          VARCHAR NOT NULL,
    year                  VARCHAR NOT NULL,
    n                     BIGINT NOT NULL,
    events                BIGINT NOT NULL,
    converged             BOOLEAN NOT NULL,
    c_statistic           DOUBLE,
    hosmer_lemeshow_chi2  DOUBLE,
    hosmer_lemeshow_df    BIGINT,
    hosmer_lemeshow_p     DOUBLE,
    dropped_categories    VARCHAR          -- categories without records that year
);

-- Grain: one row per model term (intercept or non-reference category) x indicator x year.
CREATE TABLE IF NOT EXISTS risk_model_coefficients (
    indicator_id  VARCHAR NOT NULL,
    year          VARCHAR NOT NULL,
    position      INTEGER NOT NULL,        -- 0 = intercept, then the definition's order
    term          VARCHAR NOT NULL,
    estimate      DOUBLE NOT NULL,         -- log odds
    std_error     DOUBLE,
    ci_low        DOUBLE,
    ci_high       DOUBLE,
    odds_ratio    DOUBLE
);
