-- Grain: one row per extract file loaded into the warehouse (content hash is the identity).
CREATE SEQUENCE IF NOT EXISTS extract_file_ids START 1;

CREATE TABLE IF NOT EXISTS extract_files (
    file_id           INTEGER PRIMARY KEY,
    source            VARCHAR NOT NULL,
    file_name         VARCHAR NOT NULL,
    extract_date      DATE NOT NULL,
    content_hash      VARCHAR NOT NULL UNIQUE,
    encoding          VARCHAR,
    delimiter         VARCHAR,
    rows_read         INTEGER NOT NULL,
    rows_loaded       INTEGER NOT NULL,
    rows_quarantined  INTEGER NOT NULL,
    extra_columns     VARCHAR[],
    absent_columns    VARCHAR[],
    loaded_at         TIMESTAMP NOT NULL
);
