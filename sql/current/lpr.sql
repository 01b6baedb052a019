-- Grain: one row per accepted LPR contact row of every extract; completeness removes repeats.
CREATE OR REPLACE VIEW lpr AS
SELECT * EXCLUDE (file_id, row_number)
FROM lpr_history;
