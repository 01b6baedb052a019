-- Grain: one row per stroke record_id: the version from the latest extract (ties: the later load).
CREATE OR REPLACE VIEW stroke AS
SELECT * EXCLUDE (file_id, row_number)
FROM stroke_history
QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY extract_date DESC, file_id DESC) = 1;
