-- One batch of an extract ($file_id, $extract_date) into {source}: the rows of `incoming`
-- (history-shaped, validated) whose values equal their record's current version are only
-- noted as re-delivered; the others are new versions in history. The current rows follow
-- when this extract is later than the one they came from ({same} compares every value column).
CREATE OR REPLACE TEMP TABLE unchanged AS
SELECT incoming.row_number, current.file_id AS version_file_id,
       current.row_number AS version_row
FROM incoming
JOIN {source}_current_rows AS current ON current.record_id = incoming.record_id
JOIN {source}_history AS history
  ON history.file_id = current.file_id AND history.row_number = current.row_number
WHERE {same};

INSERT INTO {source}_history BY NAME
SELECT * FROM incoming ANTI JOIN unchanged USING (row_number);

INSERT INTO {source}_redelivered
SELECT $file_id, row_number, version_file_id, version_row FROM unchanged;

UPDATE {source}_current_rows AS current
SET file_id = coalesce(unchanged.version_file_id, $file_id),
    row_number = coalesce(unchanged.version_row, incoming.row_number),
    extract_date = $extract_date, delivered_by = $file_id
FROM incoming LEFT JOIN unchanged USING (row_number)
WHERE current.record_id = incoming.record_id
  AND (current.extract_date < $extract_date
       OR (current.extract_date = $extract_date AND current.delivered_by < $file_id));

INSERT INTO {source}_current_rows
SELECT incoming.record_id, $file_id, incoming.row_number, $extract_date, $file_id
FROM incoming ANTI JOIN {source}_current_rows AS current USING (record_id);

DROP TABLE unchanged;
