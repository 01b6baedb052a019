-- Grain: one row per {source} record_id: its version from the latest delivered extract
-- holding it (ties: the later load), as kept at ingest in {source}_current_rows.
CREATE OR REPLACE VIEW {source} AS
SELECT current.extract_date, history.* EXCLUDE (file_id, row_number, extract_date)
FROM {source}_current_rows AS current
JOIN {source}_history AS history
  ON history.file_id = current.file_id AND history.row_number = current.row_number;
