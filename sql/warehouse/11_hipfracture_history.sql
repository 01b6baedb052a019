-- Grain: one row per hip fracture record version (record_id x extract file).
CREATE TABLE IF NOT EXISTS hipfracture_history (
    file_id             INTEGER NOT NULL,
    row_number          BIGINT NOT NULL,
    extract_date        DATE NOT NULL,
    record_id           VARCHAR NOT NULL,
    pseudonym           VARCHAR NOT NULL,
    age                 SMALLINT NOT NULL,
    sex                 VARCHAR NOT NULL,
    municipality_code   INTEGER NOT NULL,
    hospital_code       VARCHAR NOT NULL,
    admission_at        TIMESTAMP NOT NULL,
    diagnosis           VARCHAR NOT NULL,
    surgery_at          TIMESTAMP,
    asa_score           SMALLINT,
    new_mobility_score  SMALLINT,
    mobilised_at        TIMESTAMP,
    cas_at_discharge    SMALLINT,
    rehab_plan          VARCHAR NOT NULL,
    discharge_at        TIMESTAMP,
    reoperation_date    DATE,
    death_date          DATE
);
