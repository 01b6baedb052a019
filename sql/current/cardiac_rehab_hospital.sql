-- Grain: one row per cardiac_rehab_hospital record_id: the version from the latest extract (ties: the later load).
CREATE OR REPLACE VIEW cardiac_rehab_hospital AS
SELECT * EXCLUDE (file_id, row_number)
FROM cardiac_rehab_hospital_history
QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY extract_date DESC, file_id DESC) = 1;
