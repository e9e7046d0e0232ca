"""`carebot roster import --csv`: English and French exports, every bad row named by line."""

from __future__ import annotations

import io
from pathlib import Path

from bot.care.roster import Roster
from bot.cli import main

EN = """\
patient_id,patient_matrix_id,patient_name,practitioner_id,practitioner_matrix_id,practitioner_name,messaging,last_consultation,treatment,long_term
pat-0001,@alice:clinic.example,Alice Dupont,dr-martin,@dr.martin:clinic.example,Dr Claire Martin,yes,2026-09-14,Levothyroxine 75 µg,yes
pat-0001,@alice:clinic.example,Alice Dupont,dr-martin,@dr.martin:clinic.example,Dr Claire Martin,yes,2026-03-01,Amoxicilline 1 g,no
pat-0002,@bob:clinic.example,Bob Durand,dr-martin,@dr.martin:clinic.example,Dr Claire Martin,yes,,,
"""

FR = """\
ID_Patient;Matrix_Patient;Nom_Patient;Langue_Patient;ID_Praticien;Matrix_Praticien;Nom_Praticien;Messagerie;Dernière_Consultation;Traitement;Long_Cours
pat-0001;@alice:clinic.example;Alice Dupont;fr;dr-martin;@dr.martin:clinic.example;Dr Claire Martin;oui;14/09/2026;Lévothyrox 75 µg;oui
"""


def _run(tmp_path: Path, text: str, *extra: str) -> tuple[int, str, str, Path]:
    src = tmp_path / "export.csv"
    src.write_text(text, encoding="utf-8")
    out_file = tmp_path / "roster.yaml"
    out, err = io.StringIO(), io.StringIO()
    import sys

    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(["roster", "import", "--csv", str(src), "--out", str(out_file), *extra])
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue(), out_file


def test_an_english_export_becomes_a_roster_the_bot_loads(tmp_path: Path) -> None:
    code, out, err, path = _run(tmp_path, EN)
    assert code == 0, err
    roster = Roster.load(path)
    pair = roster.pair("pat-0001", "dr-martin")
    assert str(pair.care.last_consultation) == "2026-09-14"  # the latest of the rows
    assert [(t.name, t.long_term) for t in pair.care.treatments] == [("Levothyroxine 75 µg", True), ("Amoxicilline 1 g", False)]
    assert roster.pair("pat-0002", "dr-martin").care.last_consultation is None
    assert "2 patients" in out and "1 verified pairs" in out


def test_a_french_export_with_semicolons_and_dd_mm_yyyy_dates(tmp_path: Path) -> None:
    code, _out, err, path = _run(tmp_path, FR)
    assert code == 0, err
    roster = Roster.load(path)
    assert roster.patient("pat-0001").locale == "fr"
    assert str(roster.pair("pat-0001", "dr-martin").care.last_consultation) == "2026-09-14"


def test_every_bad_row_is_reported_by_line_and_nothing_is_written(tmp_path: Path) -> None:
    bad = EN + (
        "Pat 3,@carol:clinic.example,Carol,dr-martin,@dr.martin:clinic.example,Dr Claire Martin,yes,2026-01-01,X,yes\n"
        "pat-0004,carol,Carol,dr-martin,@dr.martin:clinic.example,Dr Claire Martin,yes,14-14-2026,X,maybe\n"
        "pat-0005,@alice:clinic.example,Someone,dr-martin,@dr.martin:clinic.example,Dr Claire Martin,yes,,,\n"
    )
    code, _out, err, path = _run(tmp_path, bad)
    assert code == 1 and not path.exists()
    assert "export.csv:5: patient_id:" in err
    assert "export.csv:6: patient_matrix_id:" in err
    assert "export.csv:6: last_consultation:" in err and "YYYY-MM-DD" in err
    assert "export.csv:6: long_term:" in err
    assert "export.csv:7: patient_matrix_id: already used by patient 'pat-0001' on line 2" in err


def test_a_missing_column_is_named_in_both_languages(tmp_path: Path) -> None:
    code, _out, err, _path = _run(tmp_path, "patient_id,patient_name\npat-1,A\n")
    assert code == 1
    assert "missing column 'patient_matrix_id' (French: 'matrix_patient')" in err


def test_an_existing_roster_is_not_replaced_without_force(tmp_path: Path) -> None:
    (tmp_path / "roster.yaml").write_text("keep me")
    code, _out, err, path = _run(tmp_path, EN)
    assert code == 1 and "--force" in err and path.read_text() == "keep me"
    assert _run(tmp_path, EN, "--force")[0] == 0
