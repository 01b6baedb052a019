-- Grain: one row per hospital cardiac rehabilitation course version (record_id x extract file).
CREATE TABLE IF NOT EXISTS cardiac_rehab_hospital_history (
    file_id            INTEGER NOT NULL,
    row_number         BIGINT NOT NULL,
    extract_date       DATE NOT NULL,
    record_id          VARCHAR NOT NULL,
    pseudonym          VARCHAR NOT NULL,
    age                SMALLINT NOT NULL,
    sex                VARCHAR NOT NULL,
    municipality_code  INTEGER NOT NULL,
    hospital_code      VARCHAR NOT NULL,
    diagnosis          VARCHAR NOT NULL,
    index_date         DATE NOT NULL,
    referred           VARCHAR NOT NULL,
    referral_date      DATE
);
