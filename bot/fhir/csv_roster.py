"""`carebot roster import --csv FILE`: a practice-software CSV export -> a validated roster.yaml.

For a clinic without a FHIR server. One row per (patient, practitioner, treatment); a patient
with several treatments or practitioners has several rows, a row without a treatment is fine.
Separator `,` or `;` (detected), UTF-8 (with or without BOM). Headers in English or French,
in any order, case and accents ignored:

| English                | French                  | required | value                         |
|------------------------|-------------------------|----------|-------------------------------|
| patient_id             | id_patient              | yes      | roster id `[a-z0-9-]+`        |
| patient_matrix_id      | matrix_patient          | yes      | `@alice:clinic.example`       |
| patient_name           | nom_patient             | yes      | display name                  |
| patient_locale         | langue_patient          | no       | fr or en                      |
| practitioner_id        | id_praticien            | yes      | roster id                     |
| practitioner_matrix_id | matrix_praticien        | yes      | `@dr.martin:clinic.example`   |
| practitioner_name      | nom_praticien           | yes      | display name                  |
| messaging              | messagerie              | no       | yes/no, oui/non, 1/0 (no)     |
| last_consultation      | derniere_consultation   | no       | YYYY-MM-DD or DD/MM/YYYY      |
| treatment              | traitement              | no       | medication name               |
| long_term              | long_cours              | no       | yes/no, oui/non, 1/0 (no)     |

Every bad row is reported with its line number; nothing is written unless every row is good.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from bot.care.roster import Roster, check_id, check_mxid
from bot.yamlutil import ConfigError, ConfigErrors, load_yaml

COLUMNS: dict[str, tuple[str, ...]] = {
    "patient_id": ("patient_id", "id_patient"),
    "patient_matrix_id": ("patient_matrix_id", "matrix_patient"),
    "patient_name": ("patient_name", "nom_patient"),
    "patient_locale": ("patient_locale", "langue_patient"),
    "practitioner_id": ("practitioner_id", "id_praticien"),
    "practitioner_matrix_id": ("practitioner_matrix_id", "matrix_praticien"),
    "practitioner_name": ("practitioner_name", "nom_praticien"),
    "messaging": ("messaging", "messagerie"),
    "last_consultation": ("last_consultation", "derniere_consultation"),
    "treatment": ("treatment", "traitement"),
    "long_term": ("long_term", "long_cours"),
}
REQUIRED = ("patient_id", "patient_matrix_id", "patient_name", "practitioner_id", "practitioner_matrix_id", "practitioner_name")
_YES = {"yes", "y", "oui", "o", "1", "true", "vrai", "x"}
_NO = {"no", "n", "non", "0", "false", "faux", ""}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in text if not unicodedata.combining(c)).replace(" ", "_").replace("-", "_")


def _bool(value: str) -> bool:
    v = _fold(value)
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise ValueError(f"'{value}' is not yes/no (oui/non)")


def _date(value: str) -> dt.date | None:
    v = value.strip()
    if not v:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(v, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"'{value}' is not a date; write it YYYY-MM-DD or DD/MM/YYYY")


def _header_map(header: list[str], file: str) -> dict[str, int]:
    wanted = {_fold(alias): key for key, aliases in COLUMNS.items() for alias in aliases}
    found: dict[str, int] = {}
    errors = []
    for i, name in enumerate(header):
        key = wanted.get(_fold(name))
        if key is None:
            errors.append(ConfigError(file, 1, name, f"unknown column; known columns: {', '.join(COLUMNS)} (or their French names)"))
        elif key in found:
            errors.append(ConfigError(file, 1, name, "this column appears twice; keep one"))
        else:
            found[key] = i
    for key in REQUIRED:
        if key not in found:
            errors.append(ConfigError(file, 1, key, f"missing column '{key}' (French: '{COLUMNS[key][1]}'); add it to the export"))
    if errors:
        raise ConfigErrors(errors)
    return found


def roster_from_csv(path: Path) -> dict[str, Any]:
    """The roster as YAML data; ConfigErrors lists every bad row (file:line: column: message)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigErrors([ConfigError(file, None, "", f"cannot read it ({exc.strerror})")]) from None
    except UnicodeDecodeError:
        raise ConfigErrors([ConfigError(file, None, "", "not UTF-8 text; export the CSV as UTF-8")]) from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        raise ConfigErrors([ConfigError(file, 1, "", "the file is empty; it needs a header line and one line per treatment")])
    cols = _header_map(rows[0], file)
    errors: list[ConfigError] = []
    pracs: dict[str, dict[str, Any]] = {}
    pats: dict[str, dict[str, Any]] = {}
    owners: dict[tuple[str, str], tuple[str, int]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        get = {k: (row[i].strip() if i < len(row) else "") for k, i in cols.items()}
        row_errors = []

        def check(key: str, fn: Any, **kw: Any) -> Any:
            try:
                return fn(get.get(key, ""), **kw)
            except ValueError as exc:
                row_errors.append(ConfigError(file, line, key, str(exc)))
                return None

        def text_of(key: str) -> str:
            return get.get(key, "")

        for key in REQUIRED:
            if not text_of(key):
                row_errors.append(ConfigError(file, line, key, "is empty; fill it in"))
        if row_errors:
            errors.extend(row_errors)
            continue
        pid, prid = check("patient_id", check_id), check("practitioner_id", check_id)
        pmx, prmx = check("patient_matrix_id", check_mxid), check("practitioner_matrix_id", check_mxid)
        messaging = check("messaging", _bool)
        last = check("last_consultation", _date)
        long_term = check("long_term", _bool)
        locale = text_of("patient_locale").lower() or None
        if locale not in (None, "fr", "en"):
            row_errors.append(ConfigError(file, line, "patient_locale", f"'{locale}' is not fr or en"))
        if row_errors:
            errors.extend(row_errors)
            continue
        for kind, mx, ident in (("patient", pmx, pid), ("practitioner", prmx, prid)):
            other = owners.setdefault((kind, mx), (ident, line))
            if other[0] != ident:
                row_errors.append(ConfigError(file, line, f"{kind}_matrix_id", f"already used by {kind} '{other[0]}' on line {other[1]}; one Matrix id per person"))
        if pmx == prmx:
            row_errors.append(ConfigError(file, line, "practitioner_matrix_id", "the same as the patient's: a patient cannot be their own practitioner"))
        if row_errors:
            errors.extend(row_errors)
            continue
        prac = {"id": prid, "matrix_id": prmx, "display_name": text_of("practitioner_name"), "messaging": bool(messaging)}
        pat = {"id": pid, "matrix_id": pmx, "display_name": text_of("patient_name")} | ({"locale": locale} if locale else {})
        for kind, table, entry in (("practitioner", pracs, prac), ("patient", pats, pat)):
            known = table.setdefault(entry["id"], {**entry, "_line": line})
            for k, v in entry.items():
                if known.get(k) != v and not (kind == "practitioner" and k == "messaging"):
                    errors.append(ConfigError(file, line, f"{kind}_{k.replace('display_name', 'name')}",
                                              f"differs from line {known['_line']} for {kind} '{entry['id']}'; make the lines agree"))
            if kind == "practitioner" and messaging:
                known["messaging"] = True
        care = {c["practitioner"]: c for c in pats[pid].setdefault("care", [])}
        entry = care.get(prid)
        if entry is None:
            entry = {"practitioner": prid, "last_consultation": None, "treatments": []}
            pats[pid]["care"].append(entry)
        if last is not None and (entry["last_consultation"] is None or last > entry["last_consultation"]):
            entry["last_consultation"] = last
        if text_of("treatment"):
            entry["treatments"].append({"name": text_of("treatment"), "long_term": bool(long_term)})
    data = {
        "practitioners": [{k: v for k, v in p.items() if k != "_line"} for p in pracs.values()],
        "patients": [{k: v for k, v in p.items() if k != "_line"} for p in pats.values()],
    }
    if errors:
        raise ConfigErrors(errors)
    return data


def write_roster(data: dict[str, Any], out: Path, source: str) -> Roster:
    """Write roster.yaml once the bot's own loader accepts it (same checks as at start)."""
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(f"# Written by `carebot roster import --csv {source}`.\n" + body, encoding="utf-8")
    try:
        roster = Roster.from_doc(load_yaml(tmp))
    except ConfigErrors:
        tmp.unlink()
        raise
    os.replace(tmp, out)
    return roster


def main_roster_import(args: Any, out: Any, err: Any) -> int:
    target = Path(args.out)
    if target.exists() and not args.force:
        print(f"{target}: already exists; choose another --out or add --force to replace it", file=err)
        return 1
    try:
        data = roster_from_csv(Path(args.csv))
        roster = write_roster(data, target, args.csv)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=err)
        print(f"{len(exc.errors)} problem(s); nothing was written.", file=err)
        return 1
    print(f"OK: {target}: {len(roster.practitioners)} practitioners, {len(roster.patients)} patients, "
          f"{len(roster.verified_pairs())} verified pairs", file=out)
    return 0
