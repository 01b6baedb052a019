-- Grain: one row per rule a delivered row broke (a row breaking two rules has two rows).
-- Values shaped like a CPR number are stored as '<cpr hidden>'.
CREATE TABLE IF NOT EXISTS quarantine (
    file_id            INTEGER NOT NULL,
    source             VARCHAR NOT NULL,
    file_name          VARCHAR NOT NULL,
    row_number         BIGINT NOT NULL,   -- data rows count from 1; the header is not a row
    column_name        VARCHAR,           -- null for a row that could not be split into fields
    rule               VARCHAR NOT NULL,
    value              VARCHAR,
    record_id          VARCHAR,
    hospital_code      VARCHAR,
    municipality_code  VARCHAR
);
