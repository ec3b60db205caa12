"""Write ``data/sample/``: the simulator's default program as a realistic site export.

The tables are ``simulate_program()`` with its defaults (seed 0), written the way a
program's case-management system would export them, so that ``recoverystats validate
data/sample`` exercises the mapping path:

- site column names (``ClientID``, ``Intake Date``, ``Arm``, ...), not canonical ones;
- ``MM/DD/YYYY`` dates, ``M``/``F``/``X`` gender codes, ``Y``/``N`` flags, display
  labels for arms and risk levels, ``NULL`` for missing dates in the client file;
- the GPRA assessments as an Excel workbook with a title row above the header; the
  other tables as CSV;
- ``program.toml`` mapping all of it back onto the canonical tables.

Deterministic: the same simulator version gives byte-identical files (the workbook's
zip timestamps and document properties are fixed).

Usage::

    python tools/make_sample.py [--out data/sample]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATE_FMT = "%m/%d/%Y"
FIXED_TIME = dt.datetime(2026, 10, 1, 0, 0, 0)

ARMS = {"peer_mentoring": "Peer Mentoring", "comparison": "Comparison"}
SEX = {"male": "M", "female": "F", "nonbinary": "X", "other": "O", "unknown": "U"}
RISK = {"low": "Low", "moderate": "Moderate", "high": "High", "very_high": "Very High"}
YN = {True: "Y", False: "N"}

PARTICIPANT_COLUMNS = {
    "participant_id": "ClientID",
    "enrollment_date": "Intake Date",
    "group": "Arm",
    "site": "Site",
    "release_date": "Release Date",
    "discharge_date": "Discharge Date",
    "discharge_reason": "Discharge Reason",
    "birth_date": "DOB",
    "age": "Age at Intake",
    "gender": "Sex",
    "race": "Race",
    "ethnicity": "Ethnicity",
    "risk_level": "Risk Level",
    "risk_score": "LSI-R Score",
    "prior_incarcerations": "Prior Incarcerations",
    "primary_substance": "Primary Substance",
    "dual_diagnosis": "Dual Dx",
    "followup_end_date": "Follow-up End",
}
MENTOR_COLUMNS = {
    "mentor_id": "MentorID",
    "site": "Site",
    "gender": "Sex",
    "lived_incarceration": "Lived Experience - Incarceration",
    "lived_recovery": "Lived Experience - Recovery",
    "years_in_recovery": "Years in Recovery",
    "certified_date": "Certification Date",
}
MATCH_COLUMNS = {
    "participant_id": "ClientID",
    "mentor_id": "MentorID",
    "match_date": "Match Date",
    "end_date": "Match End",
    "match_basis": "Match Basis",
}
CONTACT_COLUMNS = {
    "participant_id": "ClientID",
    "contact_date": "Contact Date",
    "mentor_id": "MentorID",
    "modality": "Contact Type",
    "minutes": "Minutes",
}
EVENT_COLUMNS = {
    "participant_id": "ClientID",
    "event_date": "Date",
    "event_type": "Event",
    "result": "Screen Result",
    "substance": "Substance",
    "source": "Source",
}
ASSESSMENT_COLUMNS = {
    "participant_id": "Client ID",
    "assessment_date": "Interview Date",
    "timepoint": "Interview Type",
    "any_use_30d": "Any Use (30d)",
    "arrested_30d": "Arrested (30d)",
    "employed_or_school": "Employed/School",
    "stable_housing": "Stable Housing",
    "social_support": "Social Support",
    "satisfaction": "Satisfaction (1-5)",
    "quality_of_life": "Quality of Life (1-5)",
}
TIMEPOINT_LABELS = {
    "intake": "Intake",
    "followup_6m": "6-Month Follow-up",
    "discharge": "Discharge",
    "other": "Other",
}
MODALITY_LABELS = {
    "in_person": "In person",
    "phone": "Phone",
    "video": "Video",
    "text": "Text",
    "group": "Group",
}


def _dates(s: pd.Series, na: str = "") -> pd.Series:
    out = s.dt.strftime(DATE_FMT)
    return out.where(s.notna(), na)


def _flags(s: pd.Series) -> pd.Series:
    return s.map(lambda v: "" if pd.isna(v) else YN[bool(v)])


def _export(df: pd.DataFrame, columns: dict[str, str], *, date_na: str = "") -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for canon, site in columns.items():
        s = df[canon]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[site] = _dates(s, date_na)
        elif str(s.dtype) == "boolean" or s.dtype == bool:
            out[site] = _flags(s)
        else:
            out[site] = s.astype(object).where(s.notna(), "")
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")


def _write_xlsx(df: pd.DataFrame, path: Path, *, sheet: str, title: str) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([title])
    ws.append(list(df.columns))
    for row in df.itertuples(index=False, name=None):
        ws.append(
            [
                None
                if (
                    v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT
                )
                else v
                for v in row
            ]
        )
    for cell in ws["B"][2:]:
        cell.number_format = "mm/dd/yyyy"
    wb.properties.creator = "recoverystats tools/make_sample.py"
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    # rewrite the zip with fixed timestamps (openpyxl stamps the current time)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                import re

                text = re.sub(
                    r"(<dcterms:modified[^>]*>)[^<]*(<)", r"\g<1>2026-10-01T00:00:00Z\2", text
                )
                text = re.sub(
                    r"(<dcterms:created[^>]*>)[^<]*(<)", r"\g<1>2026-10-01T00:00:00Z\2", text
                )
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, data)


PROGRAM_TOML = """\
# Mapping of the sample site export onto the recoverystats data model.
# Format: docs/data-model.md. Paths are relative to this file.

[program]
name = "Sample peer-mentoring program (simulated, seed 0)"
as_of = "{as_of}"

[defaults]
date_format = "%m/%d/%Y"
na_values = ["", "NULL", "N/A", "NA", "-"]

[labels.discharge_reason]
administrative = "Administrative discharge"

[tables.participants]
file = "clients.csv"

[tables.participants.rename]
{participants_rename}

[tables.participants.values.group]
"Peer Mentoring" = "peer_mentoring"
"Comparison" = "comparison"

[tables.participants.values.gender]
M = "male"
F = "female"
X = "nonbinary"
O = "other"
U = "unknown"

[tables.participants.values.dual_diagnosis]
Y = "true"
N = "false"

[tables.mentors]
file = "mentors.csv"

[tables.mentors.rename]
{mentors_rename}

[tables.mentors.values.gender]
M = "male"
F = "female"
X = "nonbinary"

[tables.matches]
file = "matches.csv"

[tables.matches.rename]
{matches_rename}

[tables.contacts]
file = "contact_log.csv"

[tables.contacts.rename]
{contacts_rename}

[tables.events]
file = "events.csv"

[tables.events.rename]
{events_rename}

[tables.assessments]
file = "gpra_interviews.xlsx"
sheet = "GPRA"
header_row = 2        # row 1 is a title row

[tables.assessments.rename]
{assessments_rename}

[tables.assessments.values.timepoint]
"Intake" = "intake"
"6-Month Follow-up" = "followup_6m"
"Discharge" = "discharge"
"Other" = "other"
"""


def _rename_block(columns: dict[str, str]) -> str:
    return "\n".join(f'"{site}" = "{canon}"' for canon, site in columns.items())


def make_sample(out: Path) -> dict[str, Path]:
    """Write the sample export to ``out``; returns the files written."""
    from recoverystats.datasets import simulate_program

    sim = simulate_program()
    t = sim.tables
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    p = t["participants"].copy()
    p["group"] = p["group"].map(ARMS).astype(object)
    p["gender"] = p["gender"].map(lambda v: "" if pd.isna(v) else SEX[v]).astype(object)
    p["risk_level"] = p["risk_level"].map(lambda v: "" if pd.isna(v) else RISK[v]).astype(object)
    clients = _export(p, PARTICIPANT_COLUMNS, date_na="NULL")
    paths["participants"] = out / "clients.csv"
    _write_csv(clients, paths["participants"])

    m = t["mentors"].copy()
    m["gender"] = m["gender"].map(lambda v: "" if pd.isna(v) else SEX[v]).astype(object)
    paths["mentors"] = out / "mentors.csv"
    _write_csv(_export(m, MENTOR_COLUMNS), paths["mentors"])

    paths["matches"] = out / "matches.csv"
    _write_csv(_export(t["matches"], MATCH_COLUMNS), paths["matches"])

    c = t["contacts"].copy()
    c["modality"] = (
        c["modality"].map(lambda v: "" if pd.isna(v) else MODALITY_LABELS[v]).astype(object)
    )
    paths["contacts"] = out / "contact_log.csv"
    _write_csv(_export(c, CONTACT_COLUMNS), paths["contacts"])

    paths["events"] = out / "events.csv"
    _write_csv(_export(t["events"], EVENT_COLUMNS), paths["events"])

    a = t["assessments"].copy()
    xa = pd.DataFrame(index=a.index)
    for canon, site in ASSESSMENT_COLUMNS.items():
        s = a[canon]
        if canon == "assessment_date":
            xa[site] = [None if pd.isna(v) else v.to_pydatetime() for v in s]
        elif canon == "timepoint":
            xa[site] = s.map(TIMEPOINT_LABELS).astype(object)
        elif str(s.dtype) == "boolean":
            xa[site] = s.map(lambda v: None if pd.isna(v) else ("Yes" if v else "No")).astype(
                object
            )
        elif canon == "participant_id":
            xa[site] = s.astype(object)
        else:
            xa[site] = s.astype(float)
    paths["assessments"] = out / "gpra_interviews.xlsx"
    _write_xlsx(
        xa,
        paths["assessments"],
        sheet="GPRA",
        title=f"GPRA interviews - exported {FIXED_TIME:%m/%d/%Y}",
    )

    toml = PROGRAM_TOML.format(
        as_of=sim.as_of.date().isoformat(),
        participants_rename=_rename_block(PARTICIPANT_COLUMNS),
        mentors_rename=_rename_block(MENTOR_COLUMNS),
        matches_rename=_rename_block(MATCH_COLUMNS),
        contacts_rename=_rename_block(CONTACT_COLUMNS),
        events_rename=_rename_block(EVENT_COLUMNS),
        assessments_rename=_rename_block(ASSESSMENT_COLUMNS),
    )
    paths["mapping"] = out / "program.toml"
    paths["mapping"].write_text(toml, encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", default=str(ROOT / "data" / "sample"), help="output folder (default data/sample)"
    )
    args = ap.parse_args(argv)
    paths = make_sample(Path(args.out))
    for name, path in paths.items():
        print(f"{name:<13} {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
