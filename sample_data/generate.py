"""Generate synthetic registry extracts that follow the data contract.

Deterministic for a seed. Every patient, CPR number and value is made up.
The committed demo input is ``python -m sample_data.generate --out sample_data/input``;
benchmarks call it with ``--rows`` in the millions (vectorised; ~10 s per million).

What the demo input exercises: two extracts per registry (the later one completes
and corrects the earlier), ';' and ',' delimiters, UTF-8 (with and without BOM)
and cp1252, one Parquet extract, hospital-to-hospital variation, uoplyst and
empty answers, and a few rows breaking each contract rule.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from schemas.declarations import LEVELS, REGISTRIES, Registry

REFERENCE_DIR = Path(__file__).parent / "reference"
FIRST_DAY = dt.datetime(2023, 1, 1)
EXTRACT_DATES = (dt.date(2025, 6, 30), dt.date(2025, 12, 31))
MINUTE = np.timedelta64(1, "m")


@dataclass
class World:
    """Reporting units and per-hospital quality effects (logit scale)."""

    rng: np.random.Generator
    hospitals: pl.DataFrame
    municipalities: pl.DataFrame

    @classmethod
    def make(cls, seed: int) -> "World":
        rng = np.random.default_rng(seed)
        hospitals = pl.read_csv(REFERENCE_DIR / "hospitals.csv")
        municipalities = pl.read_csv(REFERENCE_DIR / "municipalities.csv")
        hospitals = hospitals.with_columns(
            effect=pl.Series(rng.normal(0, 0.6, hospitals.height)),
            weight=pl.Series(rng.gamma(4.0, 1.0, hospitals.height)),
        )
        return cls(rng, hospitals, municipalities)

    def admissions(self, n: int, last: dt.datetime) -> dict[str, np.ndarray]:
        """Hospital, residence and admission time for n admissions up to ``last``."""
        rng = self.rng
        w = self.hospitals["weight"].to_numpy()
        h = rng.choice(self.hospitals.height, size=n, p=w / w.sum())
        hospital_region = self.hospitals["region_code"].to_numpy()[h]
        muni_codes = self.municipalities["municipality_code"].to_numpy()
        muni_region = self.municipalities["region_code"].to_numpy()
        # Most patients live in the region of their hospital; some travel.
        municipality = rng.choice(muni_codes, size=n)
        local = rng.random(n) < 0.9
        for region in np.unique(hospital_region):
            in_region = muni_codes[muni_region == region]
            pick = local & (hospital_region == region)
            municipality[pick] = rng.choice(in_region, size=pick.sum())
        span = int((last - FIRST_DAY).total_seconds() // 60)
        minutes = np.sort(rng.integers(0, span, size=n))
        admitted = (np.datetime64(FIRST_DAY, "m") + minutes * MINUTE).astype("datetime64[us]")
        return {"h": h, "effect": self.hospitals["effect"].to_numpy()[h],
                "hospital_code": self.hospitals["hospital_code"].to_numpy()[h],
                "municipality_code": municipality, "admission_at": admitted}


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def cpr_numbers(rng: np.random.Generator, born: np.ndarray) -> np.ndarray:
    """Valid CPR numbers for birth dates, the 7th digit chosen by the century rule."""
    born = born.astype("datetime64[D]")
    years = born.astype("datetime64[Y]").astype(int) + 1970
    months = born.astype("datetime64[M]").astype(int) % 12 + 1
    days = (born - born.astype("datetime64[M]")).astype(int) + 1
    yy = years % 100
    seventh = rng.integers(0, 4, size=born.size)
    # 19YY with yy > 36 may also use 4 or 9; 20YY (yy <= 36) uses 4.
    alt = (years < 2000) & (yy > 36) & (rng.random(born.size) < 0.15)
    seventh[alt] = rng.choice([4, 9], size=alt.sum())
    seventh[years >= 2000] = 4
    rest = rng.integers(0, 1000, size=born.size)
    frame = pl.DataFrame({"d": days, "m": months, "y": yy, "s": seventh, "r": rest})
    text = frame.select(pl.format("{}{}{}{}{}",
                                  pl.col("d").cast(pl.String).str.zfill(2),
                                  pl.col("m").cast(pl.String).str.zfill(2),
                                  pl.col("y").cast(pl.String).str.zfill(2),
                                  pl.col("s").cast(pl.String),
                                  pl.col("r").cast(pl.String).str.zfill(3)))
    cprs = text.to_series().to_numpy().astype(object)
    hyphen = rng.random(born.size) < 0.05
    cprs[hyphen] = [c[:6] + "-" + c[6:] for c in cprs[hyphen]]
    return cprs


def birth_dates(rng, admitted: np.ndarray, ages: np.ndarray) -> np.ndarray:
    offset_days = (ages * 365.25 + rng.integers(0, 365, size=ages.size)).astype(int)
    return admitted.astype("datetime64[D]") - offset_days.astype("timedelta64[D]")


def maybe(rng, mask_p: float, values: np.ndarray) -> np.ndarray:
    """Values with a share of them set missing (NaT / None)."""
    out = values.copy()
    missing = rng.random(values.size) < mask_p
    out[missing] = np.datetime64("NaT") if values.dtype.kind == "M" else None
    return out


def after(start: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    return (start + np.round(minutes).astype("int64") * MINUTE).astype("datetime64[us]")


def answers(rng, p_yes: np.ndarray, p_unknown: float = 0.03, p_empty: float = 0.01) -> np.ndarray:
    u = rng.random(p_yes.size)
    out = np.where(u < p_yes, "ja", "nej").astype(object)
    v = rng.random(p_yes.size)
    out[v < p_unknown] = "uoplyst"
    out[v > 1 - p_empty] = None
    return out


# -- registries ---------------------------------------------------------------------------
def stroke(world: World, n: int) -> pl.DataFrame:
    rng = world.rng
    a = world.admissions(n, dt.datetime.combine(EXTRACT_DATES[-1], dt.time(12)))
    adm, eff = a["admission_at"], a["effect"]
    ages = np.clip(rng.normal(72, 13, n), 16, 101).astype(int)
    diagnosis = rng.choice(["DI63", "DI61", "DI64"], p=[0.8, 0.12, 0.08], size=n)
    severity = np.clip(rng.normal(44, 14, n), 0, 58).astype(int)
    mrs = rng.choice(6, p=[0.5, 0.2, 0.12, 0.1, 0.05, 0.03], size=n)
    lyse = answers(rng, np.where(diagnosis == "DI63", expit(-1.6 + 0.5 * eff), 0.0))
    sss_missing = rng.random(n) < 0.07
    mrs_missing = rng.random(n) < 0.07
    death_risk = expit(-2.7 + 0.04 * (ages - 70) - 0.07 * (severity - 44) + 0.35 * mrs
                       - 0.4 * eff + 0.3 * (diagnosis == "DI61")
                       + 0.6 * sss_missing + 0.4 * mrs_missing)
    dies = rng.random(n) < death_risk
    death_day = np.where(rng.random(n) < 0.85, rng.integers(0, 31, n), rng.integers(31, 200, n))
    length_of_stay = rng.gamma(2.0, 60.0, n) + 10  # hours
    unit_delay = np.where(rng.random(n) < expit(2.3 + eff), rng.exponential(4, n),
                          24 + rng.exponential(20, n))
    needle = rng.lognormal(np.log(32) - 0.15 * eff, 0.45, n)
    return pl.DataFrame({
        "record_id": [f"S{i:08d}" for i in range(n)],
        "cpr": cpr_numbers(rng, birth_dates(rng, adm, ages)),
        "sex": rng.choice(["M", "F"], size=n),
        "municipality_code": a["municipality_code"],
        "hospital_code": a["hospital_code"],
        "admission_at": adm,
        "diagnosis": diagnosis,
        "stroke_unit_at": maybe(rng, 0.04, after(adm, unit_delay * 60)),
        "imaging_at": maybe(rng, 0.02, after(adm, rng.exponential(40, n))),
        "thrombolysis": lyse,
        "thrombolysis_at": np.where(lyse == "ja", maybe(rng, 0.03, after(adm, needle)),
                                    np.datetime64("NaT")),
        "dysphagia_screening_at": maybe(rng, 0.03, after(adm, np.where(
            rng.random(n) < expit(2.0 + eff), rng.uniform(10, 1400, n), rng.uniform(1450, 4000, n)))),
        "physio_assessment_at": maybe(rng, 0.05, after(adm, np.where(
            rng.random(n) < expit(1.8 + eff), rng.uniform(60, 2870, n), rng.uniform(2900, 6000, n)))),
        "sss_score": np.where(sss_missing, None, severity.astype(object)),
        "prestroke_mrs": np.where(mrs_missing, None, mrs.astype(object)),
        "discharge_at": after(adm, length_of_stay * 60),
        "death_date": np.where(dies, (adm.astype("datetime64[D]") + death_day.astype("timedelta64[D]")),
                               np.datetime64("NaT")),
    })


def hipfracture(world: World, n: int) -> pl.DataFrame:
    rng = world.rng
    a = world.admissions(n, dt.datetime.combine(EXTRACT_DATES[-1], dt.time(12)))
    adm, eff = a["admission_at"], a["effect"]
    ages = np.clip(rng.normal(82, 8, n), 55, 103).astype(int)
    asa = rng.choice([1, 2, 3, 4, 5], p=[0.08, 0.35, 0.42, 0.13, 0.02], size=n)
    mobility = rng.choice(10, size=n)
    operated = rng.random(n) < 0.96
    surgery_delay = np.where(rng.random(n) < expit(1.5 + eff), rng.uniform(2, 23.9, n),
                             rng.uniform(24.2, 60, n))
    surgery = np.where(operated, after(adm, surgery_delay * 60), np.datetime64("NaT"))
    asa_missing = rng.random(n) < 0.07
    mobility_missing = rng.random(n) < 0.07
    death_risk = expit(-2.4 + 0.06 * (ages - 82) + 0.6 * (asa - 3) - 0.15 * (mobility - 5)
                       - 0.4 * eff + 0.6 * asa_missing + 0.5 * mobility_missing)
    dies = rng.random(n) < death_risk
    death_day = np.where(rng.random(n) < 0.8, rng.integers(0, 31, n), rng.integers(31, 300, n))
    reoperated = operated & (rng.random(n) < 0.06)
    return pl.DataFrame({
        "record_id": [f"H{i:08d}" for i in range(n)],
        "cpr": cpr_numbers(rng, birth_dates(rng, adm, ages)),
        "sex": rng.choice(["F", "M"], p=[0.7, 0.3], size=n),
        "municipality_code": a["municipality_code"],
        "hospital_code": a["hospital_code"],
        "admission_at": adm,
        "diagnosis": rng.choice(["DS720", "DS721", "DS722"], p=[0.5, 0.4, 0.1], size=n),
        "surgery_at": surgery,
        "asa_score": np.where(asa_missing, None, asa.astype(object)),
        "new_mobility_score": np.where(mobility_missing, None, mobility.astype(object)),
        "mobilised_at": np.where(operated, maybe(rng, 0.04, after(surgery, np.where(
            rng.random(n) < expit(1.7 + eff), rng.uniform(60, 1430, n),
            rng.uniform(1450, 3000, n)))), np.datetime64("NaT")),
        "cas_at_discharge": maybe(rng, 0.08, rng.integers(0, 7, n).astype(object)),
        "rehab_plan": answers(rng, np.full(n, expit(2.2 + eff)), 0.03, 0.02),
        "discharge_at": after(adm, rng.uniform(3, 15, n) * 1440),
        "reoperation_date": np.where(reoperated, surgery.astype("datetime64[D]")
                                     + rng.integers(5, 900, n).astype("timedelta64[D]"),
                                     np.datetime64("NaT")),
        "death_date": np.where(dies, adm.astype("datetime64[D]") + death_day.astype("timedelta64[D]"),
                               np.datetime64("NaT")),
    })


def cardiac(world: World, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = world.rng
    a = world.admissions(n, dt.datetime.combine(EXTRACT_DATES[-1], dt.time(12)))
    index_date = a["admission_at"].astype("datetime64[D]")
    eff = a["effect"]
    ages = np.clip(rng.normal(66, 11, n), 16, 98).astype(int)
    referred = answers(rng, expit(2.0 + eff), 0.03, 0.02)
    hospital = pl.DataFrame({
        "record_id": [f"C{i:08d}" for i in range(n)],
        "cpr": cpr_numbers(rng, birth_dates(rng, index_date, ages)),
        "sex": rng.choice(["M", "F"], p=[0.65, 0.35], size=n),
        "municipality_code": a["municipality_code"],
        "hospital_code": a["hospital_code"],
        "diagnosis": rng.choice(["DI21", "DI214", "DI219", "DI20", "DI25", "DI50", "DI500"],
                                p=[0.25, 0.1, 0.05, 0.2, 0.2, 0.15, 0.05], size=n),
        "index_date": index_date,
        "referred": referred,
        "referral_date": np.where(referred == "ja", index_date
                                  + rng.integers(0, 4, n).astype("timedelta64[D]"),
                                  np.datetime64("NaT")),
    })
    # Municipal part: most referred courses reach the residence municipality.
    reached = np.flatnonzero((referred == "ja") & (rng.random(n) < 0.85))
    m = reached.size
    received = index_date[reached] + rng.integers(1, 10, m).astype("timedelta64[D]")
    starts = rng.random(m) < 0.9
    wait = np.where(rng.random(m) < expit(1.2 + eff[reached]), rng.integers(0, 31, m),
                    rng.integers(31, 80, m))
    start = np.where(starts, received + wait.astype("timedelta64[D]"), np.datetime64("NaT"))
    completed = answers(rng, np.where(starts, 0.75, 0.0), 0.03, 0.02)
    smoker = answers(rng, np.full(m, 0.25), 0.02, 0.01)
    municipal = pl.DataFrame({
        "record_id": [f"M{i:08d}" for i in range(m)],
        "hospital_record_id": hospital["record_id"].to_numpy()[reached],
        "cpr": hospital["cpr"].to_numpy()[reached],
        "municipality_code": a["municipality_code"][reached],
        "referral_received_date": received,
        "rehab_start_date": start,
        "rehab_end_date": np.where(starts & (rng.random(m) < 0.8),
                                   start + rng.integers(42, 90, m).astype("timedelta64[D]"),
                                   np.datetime64("NaT")),
        "completed": completed,
        "smoker": smoker,
        "smoking_cessation_offered": answers(rng, np.where(smoker == "ja", 0.85, 0.3), 0.03, 0.02),
    })
    return hospital, municipal.sort("referral_received_date")


def lpr(world: World, registries: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Contacts for most registry records, plus unregistered patients and repeats."""
    rng = world.rng
    parts = []
    for name, frame in registries.items():
        n = frame.height
        jitter = rng.choice([0, 0, 0, 0, 0, 0, 0, 1, -1, 2], size=n).astype("timedelta64[D]")
        contact_at = frame["admission_at"].to_numpy() + jitter
        codes = frame["diagnosis"].to_numpy().astype(object)
        sub = rng.random(n) < 0.2
        codes[sub] = codes[sub] + "9" if name == "stroke" else codes[sub]
        keep = rng.random(n) < 0.97
        part = pl.DataFrame({
            "cpr": frame["cpr"].to_numpy()[keep],
            "hospital_code": frame["hospital_code"].to_numpy()[keep],
            "municipality_code": frame["municipality_code"].to_numpy()[keep],
            "admission_at": contact_at[keep],
            "action_diagnosis": codes[keep],
        })
        # Patients treated but never registered, more at some hospitals.
        unregistered = part.sample(fraction=0.07, seed=int(rng.integers(1 << 30)))
        unregistered = unregistered.with_columns(cpr=pl.Series(cpr_numbers(rng, birth_dates(
            rng, unregistered["admission_at"].to_numpy(),
            rng.integers(66, 95, unregistered.height)))))
        repeats = part.sample(fraction=0.04, seed=int(rng.integers(1 << 30)))
        parts += [part, unregistered, repeats]
    return pl.concat(parts).sort("admission_at")


# -- any declared registry ----------------------------------------------------------------
def reference_table(table: str) -> pl.DataFrame:
    """A reference table as text (codes keep their leading zeros: 012345 is not 12345)."""
    return pl.read_csv(REFERENCE_DIR / f"{table}.csv", infer_schema=False)


def declared(registry: Registry, n: int, seed: int) -> pl.DataFrame:
    """Records of a registry that has no hand-written generator, from its declaration in
    schemas/registries/<name>.yaml alone: every column by its type and domain, optional
    ``sample:`` hints (values and weights, a mean and spread, offsets from the period date,
    the share missing) making them plausible. Its own random stream, so adding a registry
    changes no other registry's sample."""
    rng = np.random.default_rng([seed, zlib.crc32(registry.name.encode())])
    last = dt.datetime.combine(EXTRACT_DATES[-1], dt.time(12))
    span = int((last - FIRST_DAY).total_seconds() // 60)
    period = (np.datetime64(FIRST_DAY, "m") + np.sort(rng.integers(0, span, n)) * MINUTE
              ).astype("datetime64[us]")
    units = _declared_units(registry, n, rng)
    data: dict[str, object] = {}
    for name, column in registry.columns.items():
        hint = column.sample or {}
        if name in units:
            values = units[name]
        elif name == registry.period:
            values = period if column.type == "datetime" else period.astype("datetime64[D]")
        elif column.type == "record_id":
            values = np.array([f"{registry.name[:1].upper()}{i:08d}" for i in range(n)], object)
        elif column.type == "cpr":
            ages = np.clip(rng.normal(hint.get("age_mean", 60), hint.get("age_sd", 15), n),
                           hint.get("age_min", 0), hint.get("age_max", 100)).astype(int)
            values = cpr_numbers(rng, birth_dates(rng, period, ages))
        elif column.type == "code":
            choices = hint.get("values", column.values)
            weights = np.array(hint.get("weights", [1.0] * len(choices)), float)
            values = rng.choice(choices, size=n, p=weights / weights.sum()).astype(object)
        elif column.type == "answer":
            values = answers(rng, np.full(n, float(hint.get("yes", 0.7))))
        elif column.type == "integer":
            low = column.min if column.min is not None else 0
            high = column.max if column.max is not None else low + 100
            if "mean" in hint:
                drawn = np.round(rng.normal(hint["mean"], hint.get("sd", 1.0), n))
            else:
                drawn = rng.integers(low, high + 1, n)
            values = np.clip(drawn, low, high).astype(int).astype(object)
        elif column.type in ("date", "datetime"):
            start, end = hint.get("days", [0, 30])
            offset = rng.integers(start, end + 1, n).astype("timedelta64[D]")
            anchor = period.astype("datetime64[D]") if column.type == "date" else period
            values = (anchor + offset).astype("datetime64[D]" if column.type == "date"
                                              else "datetime64[us]")
        else:  # text, link: nothing to link to in a registry of its own
            values = np.array([None] * n, object)
        missing = float(hint.get("missing", 0.0 if column.required else 0.05))
        if missing and column.type not in ("answer", "unit", "record_id", "cpr"):
            values = maybe(rng, missing, np.asarray(values))
        data[name] = values
    return pl.DataFrame(data)


def _declared_units(registry: Registry, n: int, rng) -> dict[str, np.ndarray]:
    """The unit columns: first the unit the region comes from; a unit at another level is
    mostly the one that unit names (a clinic's patients mostly live in its municipality)."""
    first = LEVELS.levels[registry.region_from]
    table = reference_table(first.table)
    hint = registry.columns[registry.units[first.level]].sample or {}
    if hint.get("units"):  # only some units deliver (a hint: how many)
        table = table[np.sort(rng.choice(table.height, min(hint["units"], table.height),
                                         replace=False))]
    pick = rng.integers(0, table.height, n)
    out = {registry.units[first.level]: table[first.code].to_numpy()[pick].astype(object)}
    for level, column in registry.units.items():
        if level == first.level:
            continue
        unit = LEVELS.levels[level]
        codes = reference_table(unit.table)[unit.code].to_numpy().astype(object)
        values = rng.choice(codes, size=n)
        if unit.code in table.columns:
            own = table[unit.code].to_numpy()[pick].astype(object)
            values = np.where(rng.random(n) < 0.9, own, values)
        out[column] = values
    return out


def declared_breaks(registry: Registry, good: pl.DataFrame, extract_date: dt.date
                    ) -> list[tuple[str, str | None]]:
    """A broken value for every rule a declared registry's columns carry."""
    later = (extract_date + dt.timedelta(days=3)).isoformat()
    breaks: list[tuple[str, str | None]] = []
    for name, column in registry.columns.items():
        if column.required and column.type != "answer":
            breaks.append((name, None))  # required value missing
        if column.type == "cpr":
            breaks += [(name, "3102801234"), (name, "12345")]
        elif column.type == "record_id":
            breaks.append((name, "010101-1234"))  # shaped like a CPR number
        elif column.type == "code":
            breaks.append((name, "XX99"))
        elif column.type == "answer":
            breaks.append((name, "maybe"))
        elif column.type == "integer":
            breaks += [(name, "1O1"), (name, str((column.max if column.max is not None
                                                  else 10**6) + 1))]
        elif column.type == "unit":
            level = next(LEVELS.levels[lv] for lv, c in registry.units.items() if c == name)
            zeros = sorted(c for c in good[name].drop_nulls().unique() if c[:1] == "0")
            if level.code_type == "integer":
                breaks += [(name, "999"), (name, "1O1")]
            elif level.code_type == "text" and zeros:
                breaks.append((name, zeros[0].lstrip("0")))  # leading zero lost: unknown
            else:
                breaks.append((name, "Z999"))
        elif column.type == "date":
            breaks += [(name, "01-02-2025"), (name, later)]
        elif column.type == "datetime":
            breaks += [(name, "2025-02-30 10:00"), (name, later + " 08:00")]
    return breaks


# -- extracts -------------------------------------------------------------------------------
DATE_COLUMNS = {"death_date", "reoperation_date", "index_date", "referral_date",
                "referral_received_date", "rehab_start_date", "rehab_end_date"}
PERIOD_COLUMN = {"stroke": "admission_at", "hipfracture": "admission_at",
                 "cardiac_rehab_hospital": "index_date",
                 "cardiac_rehab_municipal": "referral_received_date", "lpr": "admission_at"}


def as_of(frame: pl.DataFrame, period: str, extract_date: dt.date) -> pl.DataFrame:
    """What the registry knew on the extract date: no event after it is known yet."""
    day = pl.lit(extract_date)
    known = frame.filter(pl.col(period).cast(pl.Date) <= day)
    return known.with_columns(
        pl.when(pl.col(c).cast(pl.Date) <= day).then(pl.col(c)).alias(c)
        for c, t in frame.schema.items()
        if c != period and (t == pl.Date or isinstance(t, pl.Datetime))
    )


def as_text(frame: pl.DataFrame, rng, seconds_share: float = 0.1) -> pl.DataFrame:
    """Values as a registry export writes them."""
    out = []
    for c, t in frame.schema.items():
        col = pl.col(c)
        if isinstance(t, pl.Datetime):
            with_seconds = pl.Series(rng.random(frame.height) < seconds_share)
            out.append(pl.when(with_seconds).then(col.dt.strftime("%Y-%m-%d %H:%M:%S"))
                       .otherwise(col.dt.strftime("%Y-%m-%d %H:%M")).alias(c))
        elif t == pl.Date:
            out.append(col.dt.strftime("%Y-%m-%d").alias(c))
        else:
            out.append(col.cast(pl.String).alias(c))
    return frame.select(out)


def typed(frame: pl.DataFrame) -> pl.DataFrame:
    """numpy object/datetime columns as proper Polars types."""
    fixes = []
    for c, t in frame.schema.items():
        if t == pl.Object:
            fixes.append(pl.Series(c, frame[c].to_list(), strict=False))
    frame = frame.with_columns(fixes) if fixes else frame
    return frame.with_columns(
        pl.col(c).cast(pl.Date) for c in frame.columns if c in DATE_COLUMNS
    ).with_columns(
        pl.col(c).cast(pl.Datetime("us")) for c, t in frame.schema.items()
        if isinstance(t, pl.Datetime)
    )


def broken_rows(source: str, good: pl.DataFrame, extract_date: dt.date) -> list[dict]:
    """A few rows breaking each contract rule, made from good rows (text form)."""
    rows = good.head(12).to_dicts()
    if len(rows) < 12:
        return []
    if source not in FORMATS:  # a declared registry without a hand-written generator
        out = []
        for i, (column, value) in enumerate(declared_breaks(REGISTRIES[source], good,
                                                            extract_date)):
            row = dict(rows[i % len(rows)])
            if "record_id" in row and column != "record_id":
                row["record_id"] = f"BAD-{source[:3].upper()}-{extract_date:%Y%m}-{i:02d}"
            row[column] = value
            out.append(row)
        if "record_id" in good.columns:
            out.append(dict(rows[-1]))  # the same record_id twice in one file
        return out
    later = (extract_date + dt.timedelta(days=3)).isoformat()
    ts_cols = [c for c in good.columns if c.endswith("_at") and c != "admission_at"]
    breaks = [
        ("cpr", "3102801234"),           # 31 February is no date
        ("cpr", "12345"),                # wrong shape
        ("municipality_code", "999"),    # no such municipality
        ("municipality_code", "1O1"),    # not a whole number
        ("sex" if "sex" in good.columns else "municipality_code", "X"),
        ("hospital_code" if "hospital_code" in good.columns else "municipality_code", "H999"),
        ("record_id" if "record_id" in good.columns else "cpr", None),  # required value missing
    ]
    if "admission_at" in good.columns:
        breaks += [("admission_at", "2025-02-30 10:00"), ("admission_at", "2024-05-01"),
                   ("admission_at", later + " 08:00")]
    if "discharge_at" in good.columns:
        breaks += [("discharge_at", "2023-01-01 00:00")]  # precedes admission
    if "index_date" in good.columns:
        breaks += [("index_date", later)]
    if "referral_received_date" in good.columns:
        breaks += [("referral_received_date", "01-02-2025"), ("rehab_start_date", later)]
    if "diagnosis" in good.columns:
        breaks += [("diagnosis", "DI62" if source == "stroke" else "DX99")]
    if "action_diagnosis" in good.columns:
        breaks += [("action_diagnosis", "stroke")]
    for score, bad in (("sss_score", "59"), ("prestroke_mrs", "2.5"), ("asa_score", "0"),
                       ("completed", "maybe"), ("thrombolysis", "yes")):
        if score in good.columns:
            breaks.append((score, bad))
    out = []
    for i, (column, value) in enumerate(breaks):
        row = dict(rows[i % len(rows)])
        if "record_id" in row:
            row["record_id"] = f"BAD-{source[:3].upper()}-{extract_date:%Y%m}-{i:02d}"
        row[column] = value
        if column == "admission_at" or ts_cols and column not in ts_cols:
            for c in ts_cols:  # keep only the broken rule in play
                row[c] = None
        out.append(row)
    if "record_id" in good.columns:  # the same record_id twice in one file
        dup = dict(rows[-1])
        out.append(dup)
    return out


def write_csv(frame: pl.DataFrame, path: Path, delimiter: str, encoding: str,
              bom: bool = False, ragged_line: bool = False) -> None:
    text = frame.write_csv(separator=delimiter, null_value="", line_terminator="\r\n"
                           if encoding == "cp1252" else "\n")
    if ragged_line:
        first = text.split("\n")[1]
        text += first.rstrip("\r") + delimiter + "surplus\n"
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


FORMATS = {  # (delimiter, encoding, bom) per source and extract index
    "stroke": [(";", "utf-8", True), (",", "utf-8", False)],
    "hipfracture": [(";", "cp1252", False), (";", "cp1252", False)],
    "cardiac_rehab_hospital": [(",", "utf-8", False), (";", "utf-8", False)],
    "cardiac_rehab_municipal": [(";", "utf-8", False), (";", "cp1252", False)],
    "lpr": [("parquet", None, False), (",", "utf-8", False)],
}


def corrections(source: str, text: pl.DataFrame, rng) -> pl.DataFrame:
    """Later extracts fix some values of records already delivered."""
    if source == "stroke":
        fix = pl.Series(rng.random(text.height) < 0.03)
        return text.with_columns(pl.when(fix & (pl.col("thrombolysis") == "uoplyst"))
                                 .then(pl.lit("nej")).otherwise(pl.col("thrombolysis"))
                                 .alias("thrombolysis"))
    if source == "hipfracture":
        fix = pl.Series(rng.random(text.height) < 0.03)
        return text.with_columns(pl.when(fix).then(pl.lit("ja")).otherwise(pl.col("rehab_plan"))
                                 .alias("rehab_plan"))
    if source not in FORMATS:  # a declared registry: some unknown answers become known
        answered = [n for n, c in REGISTRIES[source].columns.items() if c.type == "answer"]
        if answered:
            own = np.random.default_rng([zlib.crc32(source.encode()), text.height])
            fix = pl.Series(own.random(text.height) < 0.03)
            return text.with_columns(
                pl.when(fix & (pl.col(answered[0]) == "uoplyst")).then(pl.lit("ja"))
                .otherwise(pl.col(answered[0])).alias(answered[0]))
    return text


# The hand-written registries first (their random stream is fixed), then every other
# declared registry, each from its declaration and with a random stream of its own.
ALL_SOURCES = (*FORMATS, *(r for r in REGISTRIES if r not in FORMATS))
DECLARED_FORMAT = [(";", "utf-8", False), (",", "cp1252", False)]


def generate(out: Path, rows: int = 3000, seed: int = 2025, bad_rows: bool = True,
             sources: tuple[str, ...] = ALL_SOURCES) -> dict[str, int]:
    world = World.make(seed)
    rng = world.rng
    registries: dict[str, pl.DataFrame] = {}
    if "stroke" in sources or "lpr" in sources:
        registries["stroke"] = typed(stroke(world, rows))
    if "hipfracture" in sources or "lpr" in sources:
        registries["hipfracture"] = typed(hipfracture(world, int(rows * 0.6)))
    if "cardiac_rehab_hospital" in sources or "cardiac_rehab_municipal" in sources:
        hospital, municipal = cardiac(world, int(rows * 0.5))
        registries["cardiac_rehab_hospital"] = typed(hospital)
        registries["cardiac_rehab_municipal"] = typed(municipal)
    if "lpr" in sources:
        registries["lpr"] = typed(lpr(world, {k: registries[k] for k in ("stroke", "hipfracture")}))
    for source in sources:
        if source not in FORMATS:
            registries[source] = typed(declared(REGISTRIES[source], rows, seed))

    if out.exists():
        shutil.rmtree(out)
    (out / "reference").mkdir(parents=True)
    for name in ("regions", "hospitals"):
        shutil.copy(REFERENCE_DIR / f"{name}.csv", out / "reference" / f"{name}.csv")
    # Danish names in a cp1252, ';' file, as many exports are.
    municipalities = pl.read_csv(REFERENCE_DIR / "municipalities.csv")
    write_csv(municipalities, out / "reference" / "municipalities.csv", ";", "cp1252")
    for level in LEVELS.units:  # further levels' tables, as committed (e.g. clinics.csv)
        extra = REFERENCE_DIR / f"{level.table}.csv"
        if level.table not in ("hospitals", "municipalities") and extra.exists():
            shutil.copy(extra, out / "reference" / extra.name)

    written = {}
    for source in sources:
        folder = out / source
        folder.mkdir()
        frame = registries[source]
        for i, extract_date in enumerate(EXTRACT_DATES):
            period = PERIOD_COLUMN.get(source) or REGISTRIES[source].period
            text = as_text(as_of(frame, period, extract_date), rng)
            if i > 0:
                text = corrections(source, text, rng)
            delimiter, encoding, bom = FORMATS.get(source, DECLARED_FORMAT)[i]
            if bad_rows:
                bad = broken_rows(source, text, extract_date)
                if bad:
                    text = pl.concat([text, pl.DataFrame(bad, schema=text.schema)])
                if i == 0 and source == "hipfracture":  # a remark column nobody asked for
                    text = text.with_columns(
                        pl.lit("Overflyttet fra anden afdeling, åben fraktur").alias("bemærkning"))
                if i > 0 and source == "stroke":
                    # A correction that breaks a rule: quarantined, the earlier version stays.
                    first = text["record_id"].to_list()[0]
                    text = text.with_columns(
                        pl.when(pl.col("record_id") == first).then(pl.lit("2022-12-31 00:00"))
                        .otherwise(pl.col("discharge_at")).alias("discharge_at"))
            name = f"{source}_{extract_date.isoformat()}"
            if delimiter == "parquet":
                text.write_parquet(folder / f"{name}.parquet")
            else:
                write_csv(text, folder / f"{name}.csv", delimiter, encoding, bom,
                          ragged_line=bad_rows and i > 0 and source == "stroke")
            written[f"{source}/{name}"] = text.height
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "input")
    parser.add_argument("--rows", type=int, default=3000, help="stroke admissions; other "
                        "registries scale with it (hip 0.6x, cardiac 0.5x, LPR ~1.7x)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--no-bad-rows", action="store_true")
    parser.add_argument("--sources", default=",".join(ALL_SOURCES))
    args = parser.parse_args()
    written = generate(args.out, args.rows, args.seed, not args.no_bad_rows,
                       tuple(args.sources.split(",")))
    for name, n in written.items():
        print(f"{n:>10,} rows  {name}")


if __name__ == "__main__":
    main()
