-- Grain: one row per accepted LPR contact row of every delivered (not retracted) extract;
-- completeness removes repeats.
CREATE OR REPLACE VIEW lpr AS
SELECT history.* EXCLUDE (file_id, row_number)
FROM lpr_history AS history
SEMI JOIN delivered_files AS f ON f.file_id = history.file_id;
