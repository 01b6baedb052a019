-- Grain: one row per region, municipality and hospital of the input's reference tables.
CREATE TABLE IF NOT EXISTS regions (
    region_code  INTEGER PRIMARY KEY,
    region_name  VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS municipalities (
    municipality_code  INTEGER PRIMARY KEY,
    municipality_name  VARCHAR NOT NULL,
    region_code        INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS hospitals (
    hospital_code  VARCHAR PRIMARY KEY,
    hospital_name  VARCHAR NOT NULL,
    region_code    INTEGER NOT NULL
);
