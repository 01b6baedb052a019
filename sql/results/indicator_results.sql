-- Grain: one row per indicator x period (year or month) x reporting unit; the output contract.
-- Internal and unsuppressed: published artefacts apply the small-number rule.
CREATE TABLE IF NOT EXISTS indicator_results (
    indicator_id         VARCHAR NOT NULL,
    period_type          VARCHAR NOT NULL,   -- 'year' | 'month'
    period               VARCHAR NOT NULL,   -- '2025' | '2025-03'
    level                VARCHAR NOT NULL,   -- 'national' | 'region' | 'hospital' | 'municipality'
    unit_code            VARCHAR NOT NULL,   -- 'DK' for national
    unit_name            VARCHAR NOT NULL,
    numerator            BIGINT,
    denominator          BIGINT NOT NULL,
    missing              BIGINT NOT NULL,
    proportion           DOUBLE,
    ci_low               DOUBLE,
    ci_high              DOUBLE,
    standard             DOUBLE,
    standard_met         BOOLEAN,
    median               DOUBLE,
    expected             DOUBLE,
    oe_ratio             DOUBLE,
    oe_low               DOUBLE,
    oe_high              DOUBLE,
    adjusted_proportion  DOUBLE,
    adjusted_low         DOUBLE,
    adjusted_high        DOUBLE,
    smoothed_proportion  DOUBLE
);
