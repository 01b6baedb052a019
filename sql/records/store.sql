-- One batch of an extract ($file_id, $extract_date, $file_name) into {source}: a row of `incoming`
-- (history-shaped, validated) whose values equal its record's current version (same
-- fingerprint, {fingerprint}) is only noted as re-delivered, the others are new versions in
-- history. The current rows follow when this extract is later than the one they came from.
CREATE OR REPLACE TEMP TABLE arriving AS
SELECT record_id, row_number, {fingerprint} AS fingerprint FROM {source}_incoming AS history;

CREATE OR REPLACE TEMP TABLE unchanged AS
SELECT arriving.row_number, current.file_id AS version_file_id,
       current.row_number AS version_row
FROM arriving
JOIN {source}_current_rows AS current
  ON current.record_id = arriving.record_id AND current.fingerprint = arriving.fingerprint;

INSERT INTO {source}_history BY NAME
SELECT * FROM {source}_incoming ANTI JOIN unchanged USING (row_number);

INSERT INTO {source}_redelivered
SELECT $file_id, row_number, version_file_id, version_row FROM unchanged;

-- The records whose current row this extract replaces: a later extract date, or the same
-- date and a later file name (as a load of the whole folder, in name order, would have it;
-- the same name again: the later load). Chosen before the UPDATE: an UPDATE whose WHERE
-- reads the columns it sets is 10-50x slower in DuckDB.
CREATE OR REPLACE TEMP TABLE replacing AS
SELECT arriving.record_id, coalesce(unchanged.version_file_id, $file_id) AS file_id,
       coalesce(unchanged.version_row, arriving.row_number) AS row_number, arriving.fingerprint
FROM arriving LEFT JOIN unchanged USING (row_number)
JOIN {source}_current_rows AS current USING (record_id)
LEFT JOIN extract_files AS holder ON holder.file_id = current.delivered_by
WHERE current.extract_date < $extract_date
   OR (current.extract_date = $extract_date
       AND (coalesce(holder.file_name, $file_name) < $file_name
            OR (coalesce(holder.file_name, $file_name) = $file_name
                AND current.delivered_by < $file_id)));

UPDATE {source}_current_rows AS current
SET file_id = replacing.file_id, row_number = replacing.row_number,
    extract_date = $extract_date, delivered_by = $file_id, fingerprint = replacing.fingerprint
FROM replacing
WHERE current.record_id = replacing.record_id;

INSERT INTO {source}_current_rows
SELECT arriving.record_id, $file_id, arriving.row_number, $extract_date, $file_id,
       arriving.fingerprint
FROM arriving ANTI JOIN {source}_current_rows AS current USING (record_id);

DROP TABLE replacing;
DROP TABLE unchanged;
DROP TABLE arriving;
