-- {source}_current_rows from scratch: every delivery of a record (its own history rows and its
-- unchanged re-deliveries), the latest delivered (not retracted) extract's wins; for the same
-- extract date the later file name, then the later load. Run after a retraction, and once for
-- a warehouse built before the table existed.
DELETE FROM {source}_current_rows;
INSERT INTO {source}_current_rows
WITH deliveries AS (
    SELECT record_id, file_id AS version_file_id, row_number AS version_row,
           file_id AS delivered_by, {fingerprint} AS fingerprint
    FROM {source}_history AS history
    UNION ALL
    SELECT history.record_id, again.version_file_id, again.version_row, again.file_id,
           {fingerprint}
    FROM {source}_redelivered AS again
    JOIN {source}_history AS history
      ON history.file_id = again.version_file_id AND history.row_number = again.version_row
)
SELECT d.record_id, d.version_file_id, d.version_row, f.extract_date, d.delivered_by,
       d.fingerprint
FROM deliveries AS d
JOIN delivered_files AS f ON f.file_id = d.delivered_by
QUALIFY row_number() OVER (PARTITION BY d.record_id
                           ORDER BY f.extract_date DESC, f.file_name DESC,
                                    d.delivered_by DESC) = 1;
