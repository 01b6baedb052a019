-- Grain: one row per stroke record version (record_id x extract file). The current view picks one.
CREATE TABLE IF NOT EXISTS stroke_history (
    file_id                 INTEGER NOT NULL,
    row_number              BIGINT NOT NULL,
    extract_date            DATE NOT NULL,
    record_id               VARCHAR NOT NULL,
    pseudonym               VARCHAR NOT NULL,
    age                     SMALLINT NOT NULL,
    sex                     VARCHAR NOT NULL,
    municipality_code       INTEGER NOT NULL,
    hospital_code           VARCHAR NOT NULL,
    admission_at            TIMESTAMP NOT NULL,
    diagnosis               VARCHAR NOT NULL,
    stroke_unit_at          TIMESTAMP,
    imaging_at              TIMESTAMP,
    thrombolysis            VARCHAR NOT NULL,
    thrombolysis_at         TIMESTAMP,
    dysphagia_screening_at  TIMESTAMP,
    physio_assessment_at    TIMESTAMP,
    sss_score               SMALLINT,
    prestroke_mrs           SMALLINT,
    discharge_at            TIMESTAMP,
    death_date              DATE
);
