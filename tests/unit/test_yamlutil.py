from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from bot.yamlutil import ConfigError, ConfigErrors, dotted, load_yaml, parse_yaml, validate


class Inner(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    count: int = 1


class Outer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    items: tuple[Inner, ...]


def test_dotted_path_uses_brackets_for_indexes():
    assert dotted(("patients", 0, "care", 1, "practitioner")) == "patients[0].care[1].practitioner"
    assert dotted(()) == ""


def test_config_error_str_names_file_line_and_key():
    e = ConfigError("roster.yaml", 14, "patients[0].care[0].practitioner", "unknown practitioner 'dr-x'.")
    assert str(e) == "roster.yaml:14: patients[0].care[0].practitioner: unknown practitioner 'dr-x'."
    assert str(ConfigError("f.yaml", None, "", "file not found.")) == "f.yaml: file not found."


def test_lines_are_recorded_for_keys_and_items():
    doc = parse_yaml("a:\n  b: 1\nlist:\n  - x: 1\n  - x: 2\n", "f.yaml")
    assert doc.lines[("a",)] == 1
    assert doc.lines[("a", "b")] == 2
    assert doc.lines[("list", 1)] == 5
    assert doc.lines[("list", 1, "x")] == 5
    # a missing key falls back to its nearest existing parent
    assert doc.line_for(("list", 1, "missing")) == 5


def test_broken_yaml_is_a_config_error_with_a_line(tmp_path: Path):
    f = tmp_path / "broken.yaml"
    f.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigErrors) as info:
        load_yaml(f)
    (err,) = info.value.errors
    assert err.file == str(f)
    assert err.line is not None and err.line >= 2
    assert "invalid YAML" in err.message


def test_tab_indentation_is_reported_not_raised(tmp_path: Path):
    f = tmp_path / "tabs.yaml"
    f.write_text("a:\n\tb: 1\n")
    with pytest.raises(ConfigErrors) as info:
        load_yaml(f)
    assert info.value.errors[0].line == 2


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigErrors) as info:
        load_yaml(tmp_path / "nope.yaml")
    assert "file not found" in str(info.value)
    assert "nope.yaml" in str(info.value)


def test_duplicate_keys_are_errors():
    with pytest.raises(ConfigErrors) as info:
        parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    (err,) = info.value.errors
    assert (err.line, err.key) == (3, "a")


def test_validation_errors_carry_line_and_dotted_key():
    doc = parse_yaml("items:\n  - name: a\n  - name: b\n    count: many\n    colour: red\n", "f.yaml")
    with pytest.raises(ConfigErrors) as info:
        validate(Outer, doc)
    by_key = {e.key: e for e in info.value.errors}
    assert by_key["items[1].count"].line == 4
    assert "whole number" in by_key["items[1].count"].message
    assert by_key["items[1].colour"].line == 5
    assert by_key["items[1].colour"].message.startswith("unknown key 'colour'; allowed keys: name, count")


def test_missing_key_points_at_the_parent_line():
    doc = parse_yaml("items:\n  - count: 2\n", "f.yaml")
    with pytest.raises(ConfigErrors) as info:
        validate(Outer, doc)
    (err,) = info.value.errors
    assert (err.line, err.key) == (2, "items[0].name")
    assert "missing required key 'name'" in err.message


def test_config_errors_str_is_one_error_per_line():
    errs = ConfigErrors([ConfigError("a", 1, "k", "m1."), ConfigError("b", 2, "k2", "m2.")])
    assert str(errs).splitlines() == ["a:1: k: m1.", "b:2: k2: m2."]
