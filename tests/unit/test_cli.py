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
