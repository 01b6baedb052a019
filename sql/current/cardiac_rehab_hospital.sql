-- Grain: one row per cardiac_rehab_hospital record_id: the version from the latest extract (ties: the later load).
-- A version is current when no newer version of the same record exists.
CREATE OR REPLACE VIEW cardiac_rehab_hospital AS
SELECT version.* EXCLUDE (file_id, row_number)
FROM cardiac_rehab_hospital_history AS version
ANTI JOIN cardiac_rehab_hospital_history AS newer
    ON newer.record_id = version.record_id
   AND (newer.extract_date > version.extract_date
        OR (newer.extract_date = version.extract_date AND newer.file_id > version.file_id));
