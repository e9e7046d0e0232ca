"""Property tests: the command parser and every file loader on arbitrary or mutated input.

parse() never raises; the YAML loaders (yamlutil, roster, policies, texts, lexicon, config) never
raise anything but ConfigErrors, and every ConfigError names the file it is about.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from unit_helpers import CONFIG, REPO, ROSTER

from bot.care import commands as cmd
from bot.care.emergency import Lexicon
from bot.care.policy import Policies
from bot.care.roster import Roster
from bot.care.texts import Texts
from bot.config import load_config
from bot.yamlutil import ConfigErrors, parse_yaml

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)

# Pathological YAML once escaped parse_yaml() as RecursionError (recursive alias, deep
# nesting), ReaderError (control characters) or ValueError/KeyError (2026-02-30, bad '!!' tags);
# the property tests and test_pathological_yaml_* now require a ConfigErrors for all of them.


# -- commands.parse --------------------------------------------------------------------------

ALIASES = sorted({a for s in cmd.COMMANDS for a in s.aliases} | {"Renouveler", "RENEW", "accépter", "Aide", "STATUT"})
PIECES = st.one_of(
    st.sampled_from(["!", "!!", " ", "  ", "\n", "\t", "\r\n", "#", ":", ",", "R", "r", "#R7", "R0", "R999999999", "R1234567890", "7:"]),
    st.sampled_from(ALIASES),
    st.sampled_from(["\u202e", "\u200b", "\u200d", "\u00ad", "\ufeff", "\x00", "\x07", "\x1b", "\x7f", "\u0301", "é", "É", "µ", "μ", "💊", "ﬁ", "İ", "ß"]),
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.text(max_size=6),
)
COMMANDISH = st.lists(PIECES, max_size=12).map("".join)


def _check_parse(text: str, max_length: int = cmd.DEFAULT_MAX_LENGTH) -> None:
    result = cmd.parse(text, max_length=max_length)
    assert result is None or isinstance(result, (cmd.Command, cmd.CommandError))
    if isinstance(result, cmd.Command):
        spec = cmd.spec(result.name)
        assert result.name == spec.name
        for arg in spec.args:
            value = getattr(result, arg.name)
            if arg.required:
                assert value is not None and value != ""
            if arg.kind == "request_id" and value is not None:
                assert 1 <= value < 10**9
        assert len(text) <= max_length
    elif isinstance(result, cmd.CommandError):
        assert result.name is None or cmd.spec(result.name).name == result.name
        if result.reason == "unknown_command":
            assert result.name is None
    if result is not None:
        assert "!" in text


@FAST
@given(st.text())
def test_parse_never_raises_on_any_text(text: str) -> None:
    _check_parse(text)


@FAST
@given(COMMANDISH, st.integers(min_value=1, max_value=200))
@example("!renew \u202e\u200b", 1000)
@example("!approve R1234567890", 1000)
@example("!" + "a" * 50, 10)
def test_parse_never_raises_on_commandish_text(text: str, max_length: int) -> None:
    _check_parse(text, max_length)
    _check_parse("!" + text, max_length)
    for alias in ("renew", "approve", "deny", "cancel"):
        _check_parse(f"!{alias} {text}", max_length)


@FAST
@given(st.sampled_from(ALIASES), st.text(max_size=30))
def test_parse_is_stable_under_invisible_characters(alias: str, arg: str) -> None:
    """Inserting zero-width / bidi characters anywhere never changes the parse."""
    plain = f"!{alias} {arg}"
    noisy = "\u200b".join(plain[i : i + 3] for i in range(0, len(plain), 3)) + "\u202e"
    assert cmd.parse(noisy, max_length=10**6) == cmd.parse(plain, max_length=10**6)


# -- YAML loaders ----------------------------------------------------------------------------

YAML_BITS = [
    ": ", ":", "- ", "-", "\t", "  ", "\n", "\n  ", "\n- ", "{", "}", "[", "]", ",", "'", '"', "#", "&a ", "*a", "&a [*a]",
    "<<: *a\n", "!!python/object:os.system ", "!!binary ", "!!set ", "!!map ", "!!str ", "!!int ", "!foo ", "? ", "?[a]: b\n",
    "null", "~", "yes", "no", "on", "1e999", ".nan", "0x1F", "0o17", "2026-13-45", "2026-02-30", "9999-12-31", "-1", "0",
    "%YAML 1.1\n", "---\n", "...\n", "|\n  x\n", ">-\n", "\ufeff", "\x00", "\x85", "é", "µ", "{{", "}}", "{x}", "kind: rules\n",
    "kind: texts\n", "kind: emergency\n", "[[[[[[[[", "]]]]]]]]", "id: x\n", "practitioner: nobody\n", "@bob:x", "@", "\\",
]


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """`base` with a few random edits: inserts of YAML-significant bits, deletions, duplicated lines."""
    text = base
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["insert", "insert", "delete", "dup", "swap", "text"]))
        pos = draw(st.integers(min_value=0, max_value=len(text)))
        if kind == "insert":
            text = text[:pos] + draw(st.sampled_from(YAML_BITS)) + text[pos:]
        elif kind == "delete":
            end = draw(st.integers(min_value=pos, max_value=min(len(text), pos + 40)))
            text = text[:pos] + text[end:]
        elif kind == "text":
            text = text[:pos] + draw(st.text(max_size=8)) + text[pos:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            if kind == "dup":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


ANY_YAML = st.one_of(st.text(max_size=200), st.lists(st.sampled_from(YAML_BITS), max_size=15).map("".join))


def _only_config_errors(load: Callable[[], Any], *names: str) -> None:
    """Run `load`; it may succeed or raise ConfigErrors whose every error names one of `names`."""
    try:
        load()
    except ConfigErrors as exc:
        assert exc.errors, "ConfigErrors without any error"
        for err in exc.errors:
            assert any(name in str(err) for name in names), str(err)
            assert err.message.strip()
        assert str(exc) == "\n".join(str(e) for e in exc.errors)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="carebot-fuzz-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@FAST
@given(st.one_of(ANY_YAML, mutated(ROSTER), mutated(CONFIG)))
@example("? [a]: b")
@example("a: 1\na: 2\n")
def test_parse_yaml_only_raises_config_errors(text: str) -> None:
    _only_config_errors(lambda: parse_yaml(text, "some/file.yaml"), "some/file.yaml")


@FILES
@given(st.one_of(mutated(ROSTER), ANY_YAML))
@example("1: 2\n")
@example("practitioners:\n  - ? [a]\n")
@example("patients:\n  - care:\n    - {practitioner: [x]}\n")
def test_roster_load_only_raises_config_errors(workdir: Path, text: str) -> None:
    path = workdir / "roster.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_config_errors(lambda: Roster.load(path), str(path))


POLICY_FILES = {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO / "policies").glob("*.yaml"))}


@settings(FILES, max_examples=20)
@given(st.sampled_from(sorted(POLICY_FILES)), st.data())
def test_policies_texts_lexicon_only_raise_config_errors(workdir: Path, name: str, data: st.DataObject) -> None:
    policies = workdir / "policies"
    shutil.rmtree(policies, ignore_errors=True)
    policies.mkdir()
    for other, text in POLICY_FILES.items():
        (policies / other).write_text(text, encoding="utf-8")
    text = data.draw(st.one_of(mutated(POLICY_FILES[name]), ANY_YAML), label="text")
    (policies / name).write_text(text, encoding="utf-8", errors="surrogatepass")
    for loader in (Policies.load, Texts.load, Lexicon.load):
        _only_config_errors(lambda: loader(policies), str(policies))


@FILES
@given(st.one_of(mutated(CONFIG), ANY_YAML))
@example("limits:\n  max_message_chars: 1e999\n")
@example("roster: {path: [1, 2]}\n")
@example("storage: {path: \"\\0\"}\n")
def test_load_config_only_raises_config_errors(workdir: Path, text: str) -> None:
    path = workdir / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_config_errors(lambda: load_config(path), str(path))


def test_error_names_the_file_for_unreadable_files(workdir: Path) -> None:
    missing = workdir / "nope" / "roster.yaml"
    with pytest.raises(ConfigErrors) as exc:
        Roster.load(missing)
    assert str(missing) in str(exc.value)
    bad = workdir / "latin1.yaml"
    bad.write_bytes("id: é".encode("latin-1"))
    with pytest.raises(ConfigErrors) as exc:
        load_config(bad)
    assert str(bad) in str(exc.value) and "UTF-8" in str(exc.value)
    with pytest.raises(ConfigErrors) as exc:
        Policies.load(workdir / "no-such-dir")
    assert str(workdir / "no-such-dir") in str(exc.value)


PATHOLOGICAL_INPUTS = [
    "&a [*a]\n",
    "a: &a\n  b: *a\n",
    "homeserver: &a {url: *a}\n",
    "practitioners: &a [*a]\n",
    "[" * 3000 + "]" * 3000,
    "locale: fr\x1f\n",
    "retention_days: !!int x\n",
    "log: {level: !!bool x}\n",
    "bot: {user_id: !!timestamp x}\n",
    "bot: {device_name: \"a\x00b\"}\n",
]


@pytest.mark.parametrize("text", PATHOLOGICAL_INPUTS, ids=range(len(PATHOLOGICAL_INPUTS)))
def test_pathological_yaml_gives_config_errors_naming_the_file(workdir: Path, text: str) -> None:
    """Recursive aliases, deep nesting, control characters, bad tags: a ConfigError, no traceback."""
    path = workdir / "pathological.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_impossible_date_in_roster_names_file_line_and_key(workdir: Path) -> None:
    """A roster typo like 2026-02-30 is a ConfigError naming the roster file, line and key."""
    path = workdir / "roster.yaml"
    path.write_text(ROSTER.replace("2026-09-14", "2026-02-30"), encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        Roster.load(path)
    message = str(info.value)
    assert f"{path}:" in message and "last_consultation" in message and "real day" in message
