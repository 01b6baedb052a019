-- Grain: one row per municipal rehabilitation referral version (record_id x extract file).
CREATE TABLE IF NOT EXISTS cardiac_rehab_municipal_history (
    file_id                    INTEGER NOT NULL,
    row_number                 BIGINT NOT NULL,
    extract_date               DATE NOT NULL,
    record_id                  VARCHAR NOT NULL,
    hospital_record_id         VARCHAR,
    pseudonym                  VARCHAR NOT NULL,
    age                        SMALLINT NOT NULL,
    municipality_code          INTEGER NOT NULL,
    referral_received_date     DATE NOT NULL,
    rehab_start_date           DATE,
    rehab_end_date             DATE,
    completed                  VARCHAR NOT NULL,
    smoker                     VARCHAR NOT NULL,
    smoking_cessation_offered  VARCHAR NOT NULL
);
