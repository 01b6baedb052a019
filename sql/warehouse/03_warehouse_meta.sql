-- Grain: one row per fact about the warehouse itself: its layout version, the fingerprint of
-- the pseudonymisation key it was built with (a keyed hash of a fixed label, never the key),
-- and the cutoff the current indicator results were computed with.
CREATE TABLE IF NOT EXISTS warehouse_meta (
    name   VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);
