-- Grain: one row per accepted LPR contact row of any extract (LPR has no record_id; repeats stay).
CREATE TABLE IF NOT EXISTS lpr_history (
    file_id            INTEGER NOT NULL,
    row_number         BIGINT NOT NULL,
    extract_date       DATE NOT NULL,
    pseudonym          VARCHAR NOT NULL,
    age                SMALLINT NOT NULL,
    hospital_code      VARCHAR NOT NULL,
    municipality_code  INTEGER NOT NULL,
    admission_at       TIMESTAMP NOT NULL,
    action_diagnosis   VARCHAR NOT NULL
);
