from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from unit_helpers import REPO, ROSTER, Setup, write

from bot.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_config_ok_prints_a_summary(setup: Setup, capsys):
    code, out, err = run(capsys, "check-config", "--config", str(setup.config))
    assert code == 0, err
    assert "2 practitioners, 3 patients, 1 verified pairs, 7 rules" in out
    assert err == ""


def test_check_config_prints_every_error_one_per_line(setup: Setup, capsys):
    write(setup.roster, ROSTER.replace("practitioner: dr-bernard", "practitioner: dr-x").replace("locale: fr", "locale: de"))
    (setup.policies / "texts.yaml").write_text("kind: texts\ntexts:\n  topic:\n    fr: Pas d'urgence ici\n")
    code, out, err = run(capsys, "check-config", "--config", str(setup.config))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert any(line.endswith("roster.yaml:23: patients[0].care[1].practitioner: unknown practitioner 'dr-x'. Add it under 'practitioners' or fix the id.") for line in lines)
    assert any("roster.yaml:14: patients[0].locale:" in line for line in lines)
    assert any("texts.yaml:4: texts.topic.fr: must mention the emergency number 15" in line for line in lines)


def test_check_config_cross_checks_policies_with_the_roster(setup: Setup, capsys):
    renewals = setup.policies / "renewals.yaml"
    renewals.write_text(renewals.read_text().replace("disabled_for: []", "disabled_for: [dr-who]"))
    code, _, err = run(capsys, "check-config", "--config", str(setup.config))
    assert code == 1
    assert "renewals.yaml" in err and "disabled_for[0]: unknown practitioner 'dr-who'" in err


def test_check_config_with_a_broken_config(tmp_path: Path, capsys):
    write(tmp_path / "c.yaml", "homeserver: {url: http://x\n")
    code, _, err = run(capsys, "check-config", "--config", str(tmp_path / "c.yaml"))
    assert code == 1 and "invalid YAML" in err and "Traceback" not in err
    code, _, err = run(capsys, "check-config", "--config", str(tmp_path / "missing.yaml"))
    assert code == 1 and "file not found" in err


def test_policy_check_lists_rules(setup: Setup, capsys):
    code, out, _ = run(capsys, "policy", "check", "--config", str(setup.config))
    assert code == 0
    assert "recent-consultation: last_consultation_within (days=365)" in out
    assert "sha256" in out


def test_policy_explain(setup: Setup, capsys):
    args = ["policy", "explain", "--config", str(setup.config), "--patient", "pat-0001", "--practitioner", "dr-martin", "--today", "2026-10-01"]
    code, out, _ = run(capsys, *args, "--medication", "levothyroxine 75ug")
    assert code == 0 and "decision: ELIGIBLE" in out and "Levothyroxine 75 µg" in out
    code, out, _ = run(capsys, *args, "--medication", "Zolpidem 10 mg", "--locale", "en")
    assert code == 0 and "NOT ELIGIBLE" in out and "patient reads (en)" in out


def test_policy_explain_unknown_ids(setup: Setup, capsys):
    code, _, err = run(capsys, "policy", "explain", "--config", str(setup.config), "--patient", "nobody", "--practitioner", "dr-martin", "--medication", "x")
    assert code == 1 and "unknown patient id 'nobody'" in err


def test_subcommands_are_declared():
    from bot.cli import build_parser

    parser = build_parser()
    for argv in (
        ["run", "--config", "c"],
        ["demo", "--dir", "d"],
        ["recover", "--config", "c", "--recovery-key-file", "k"],
        ["audit", "--config", "c", "--since", "2026-01-01"],
    ):
        assert callable(parser.parse_args(argv).func)


def test_runs_as_a_module(setup: Setup):
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", "--config", str(setup.config)], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK:")


# -- check-config: every file the config names ------------------------------------------------


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: None, "file not found: {path}. Create it or fix the path."),
    (lambda d: (d / "secret.txt").write_text("\n"), "{path} is empty. Put the secret in it."),
    (lambda d: (d / "secret.txt").mkdir(), "{path} is not a file. Give the path of a file."),
])  # fmt: skip
def test_check_config_checks_the_password_file(setup: Setup, capsys, make, message: str):
    text = setup.config.read_text(encoding="utf-8").replace("  password: null\n", "  password_file: secret.txt\n")
    setup.config.write_text(text, encoding="utf-8")
    make(setup.dir)
    code, out, err = run(capsys, "check-config", "--config", str(setup.config))
    assert code == 1 and out == ""
    path = setup.dir / "secret.txt"
    assert err.strip() == f"{setup.config}:5: bot.password_file: " + message.format(path=path)


def test_check_config_accepts_a_readable_password_file_and_never_prints_it(setup: Setup, capsys):
    text = setup.config.read_text(encoding="utf-8").replace("  password: null\n", "  password_file: secret.txt\n")
    setup.config.write_text(text, encoding="utf-8")
    (setup.dir / "secret.txt").write_text("hunter2-very-secret\n")
    code, out, err = run(capsys, "check-config", "--config", str(setup.config))
    assert code == 0 and out.startswith("OK:")
    assert "hunter2" not in out + err


def test_every_file_key_of_the_config_is_checked_however_deep():
    from pydantic import BaseModel

    from bot.cli import _named_files

    class Inner(BaseModel):
        token_file: Path | None = None
        url: str = "x"

    class Outer(BaseModel):
        password_file: Path | None = None
        fhir: Inner = Inner()

    found = list(_named_files(Outer(password_file=Path("/p"), fhir=Inner(token_file=Path("/t")))))
    assert found == [("password_file", Path("/p")), ("fhir.token_file", Path("/t"))]
    assert list(_named_files(Outer())) == []


# -- policy explain: Matrix ids and the bot's database ----------------------------------------


def test_policy_explain_accepts_matrix_ids(setup: Setup, capsys):
    args = ["policy", "explain", "--config", str(setup.config), "--today", "2026-10-01", "--medication", "Levothyrox 75"]
    code, out, err = run(capsys, *args, "--patient", "@alice:clinic.example", "--practitioner", "@dr.martin:clinic.example")
    assert code == 0, err
    assert "decision: ELIGIBLE" in out and "medication (as understood): Levothyroxine 75 µg" in out
    assert f"no database at {setup.dir / 'data' / 'carebot.db'}" in out
    code, _, err = run(capsys, *args, "--patient", "@mallory:clinic.example", "--practitioner", "dr-martin")
    assert code == 1 and "unknown patient Matrix id '@mallory:clinic.example'" in err and "roster.yaml" in err


def test_policy_explain_counts_open_requests_from_the_database(setup: Setup, capsys):
    import asyncio

    from bot.store import Store

    async def prepare() -> None:
        store = await Store.open(setup.dir / "data" / "carebot.db")
        async with store.transaction():
            for n, med in enumerate(["Metformine 500 mg", "Atorvastatine 20 mg", "levothyroxine 75 ug"]):
                await store.add_request(
                    event_id=f"$e{n}", room_id="!r", patient_id="pat-0001", practitioner_id="dr-martin",
                    medication=med, medication_key=med.lower(), status="pending",
                )
        await store.close()

    asyncio.run(prepare())
    args = ["policy", "explain", "--config", str(setup.config), "--patient", "pat-0001", "--practitioner", "dr-martin"]
    code, out, err = run(capsys, *args, "--today", "2026-10-01", "--medication", "Levothyroxine 75 µg")
    assert code == 0, err
    assert "[FAIL] max-open-requests (max_open_requests): 3 open request(s), at most 3" in out
    assert "[FAIL] no-duplicate (no_duplicate_open): an open request already exists for it" in out
    assert f"(open requests read from {setup.dir / 'data' / 'carebot.db'})" in out
