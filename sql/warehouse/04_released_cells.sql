-- Grain: one row per published cell (indicator x period x level x unit) and the counts it
-- had when a release (an annual report, a month's deliveries) published it, shown or hidden.
-- A later release hides again what an earlier one hid and does not hide what an earlier one
-- showed, where the counts have not changed since: otherwise the two releases together undo
-- the small-number rule by subtraction (reports/releases.py). Never published itself.
CREATE TABLE IF NOT EXISTS released_cells (
    release       VARCHAR NOT NULL,   -- 'annual 2025', 'monthly 2025-06'
    indicator_id  VARCHAR NOT NULL,
    period        VARCHAR NOT NULL,
    level         VARCHAR NOT NULL,
    unit_code     VARCHAR NOT NULL,
    denominator   BIGINT,
    numerator     BIGINT,
    missing       BIGINT,
    hidden        BOOLEAN NOT NULL
);
