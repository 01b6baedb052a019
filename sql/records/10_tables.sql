-- Rendered for each registry with a record_id ({source} is its name); maintained at ingest,
-- in the transaction that loads each extract, so the current view needs no anti-join.

-- Grain: one row per {source} record_id: the history row holding its current values, and the
-- latest delivered (not retracted) extract holding them (ties: the later load).
CREATE TABLE IF NOT EXISTS {source}_current_rows (
    record_id     VARCHAR NOT NULL,
    file_id       INTEGER NOT NULL,   -- the history row: its file_id and row_number
    row_number    BIGINT NOT NULL,
    extract_date  DATE NOT NULL,      -- the latest extract delivering these values
    delivered_by  INTEGER NOT NULL,   -- that extract's file_id
    fingerprint   UBIGINT NOT NULL    -- DuckDB's hash of the values (a changed version differs)
);

-- Grain: one row per record an extract delivered again unchanged (same values as the current
-- version then): not stored again in {source}_history, only which extract delivered it.
CREATE TABLE IF NOT EXISTS {source}_redelivered (
    file_id          INTEGER NOT NULL,  -- the extract that delivered it again
    row_number       BIGINT NOT NULL,   -- its row in that extract
    version_file_id  INTEGER NOT NULL,  -- the history row with the same values
    version_row      BIGINT NOT NULL
);
