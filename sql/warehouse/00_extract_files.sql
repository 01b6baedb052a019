-- Grain: one row per extract delivered: a file's content under its extract date. The same
-- content delivered again under the same date is the same extract (loading it changes nothing);
-- under a later date it is a new delivery, and its date counts for "latest extract wins".
CREATE SEQUENCE IF NOT EXISTS extract_file_ids START 1;

CREATE TABLE IF NOT EXISTS extract_files (
    file_id           INTEGER PRIMARY KEY,
    source            VARCHAR NOT NULL,
    file_name         VARCHAR NOT NULL,       -- masked by the privacy gate
    extract_date      DATE NOT NULL,
    content_hash      VARCHAR NOT NULL,
    encoding          VARCHAR,
    delimiter         VARCHAR,
    rows_read         INTEGER NOT NULL,
    rows_loaded       INTEGER NOT NULL,
    rows_quarantined  INTEGER NOT NULL,
    extra_columns     VARCHAR[],              -- header names, masked
    absent_columns    VARCHAR[],
    loaded_at         TIMESTAMP NOT NULL,
    retracted_at      TIMESTAMP,              -- set by `kvalitet extract retract`
    retracted_by      VARCHAR,
    UNIQUE (source, content_hash, extract_date)
);

-- Grain: one row per extract whose rows count (not retracted).
CREATE OR REPLACE VIEW delivered_files AS
SELECT * FROM extract_files WHERE retracted_at IS NULL;
