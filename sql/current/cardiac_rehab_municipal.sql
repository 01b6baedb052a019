-- Grain: one row per cardiac_rehab_municipal record_id: the version from the latest extract (ties: the later load).
-- A version is current when no newer version of the same record exists; retracted extracts
-- do not count.
CREATE OR REPLACE VIEW cardiac_rehab_municipal AS
WITH delivered AS (
    SELECT history.* FROM cardiac_rehab_municipal_history AS history
    SEMI JOIN delivered_files AS f ON f.file_id = history.file_id
)
SELECT version.* EXCLUDE (file_id, row_number)
FROM delivered AS version
ANTI JOIN delivered AS newer
    ON newer.record_id = version.record_id
   AND (newer.extract_date > version.extract_date
        OR (newer.extract_date = version.extract_date AND newer.file_id > version.file_id));
