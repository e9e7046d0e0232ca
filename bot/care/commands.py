"""Bot commands, declared once: parsing, usage lines and help all come from COMMANDS.

Rules of `parse`:
- A command starts with '!' immediately followed by a letter ("!renew", "!Renouveler").
  Anything else — no '!', "!!!", "! hello", "!?" — is NOT a command: it is a message for the
  practitioner (returns None). Leading whitespace and invisible characters are ignored.
- Names are case- and accent-insensitive, in English or French.
- Invisible characters (zero-width, bidi overrides, soft hyphens) are removed from arguments;
  other control characters (except newline and tab) make the command invalid.
- Extra words after a command that takes no (more) argument are ignored ("!status please").
- Request ids: "R7", "r7", "#R7", "7" (trailing ':' or ',' tolerated).
- The language of a command is the language of its word: "!help" is English, "!aide" French;
  the answer is written in it.
- An unknown command close to a known one ("!renouvler", "!statu": Damerau-Levenshtein
  distance 1, or 2 for words of 7 letters or more) carries that command as a suggestion.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz.distance import DamerauLevenshtein

from bot.care.emergency import fold, strip_invisible
from bot.care.renewals import parse_id
from bot.care.texts import Texts

Role = Literal["patient", "practitioner", "anyone"]
ArgKind = Literal["text", "request_id"]
Reason = Literal["unknown_command", "missing_argument", "invalid_request_id", "too_long", "control_characters"]

DEFAULT_MAX_LENGTH = 1000


@dataclass(frozen=True)
class ArgSpec:
    name: str  # field of Command: medication | request_id | note | reason
    kind: ArgKind
    required: bool
    rest: bool  # takes the rest of the message
    label_en: str
    label_fr: str

    def label(self, locale: str) -> str:
        text = self.label_fr if locale == "fr" else self.label_en
        return f"<{text}>" if self.required else f"[{text}]"


@dataclass(frozen=True)
class CommandSpec:
    name: str  # canonical English name
    name_fr: str
    role: Role
    args: tuple[ArgSpec, ...]
    help_key: str  # key in texts

    @property
    def aliases(self) -> tuple[str, str]:
        return (self.name, self.name_fr)

    def display_name(self, locale: str) -> str:
        return self.name_fr if locale == "fr" else self.name


_ID = ArgSpec("request_id", "request_id", True, False, "id", "id")

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("help", "aide", "anyone", (), "cmd_help"),
    CommandSpec("renew", "renouveler", "patient", (ArgSpec("medication", "text", True, True, "medication", "médicament"),), "cmd_renew"),
    CommandSpec("status", "statut", "patient", (), "cmd_status"),
    CommandSpec("cancel", "annuler", "patient", (_ID,), "cmd_cancel"),
    CommandSpec("approve", "accepter", "practitioner", (_ID, ArgSpec("note", "text", False, True, "note", "note")), "cmd_approve"),
    CommandSpec("deny", "refuser", "practitioner", (_ID, ArgSpec("reason", "text", True, True, "reason", "motif")), "cmd_deny"),
    CommandSpec("pending", "attente", "practitioner", (), "cmd_pending"),
)

_BY_ALIAS: dict[str, CommandSpec] = {fold(alias): spec for spec in COMMANDS for alias in spec.aliases}
# The language of each command word: fold("aide") -> "fr", fold("help") -> "en".
_LOCALE_OF: dict[str, str] = {
    **{fold(s.name): "en" for s in COMMANDS},
    **{fold(s.name_fr): "fr" for s in COMMANDS},
}


def spec(name: str) -> CommandSpec:
    """The declaration of a command by canonical name or alias (KeyError if unknown)."""
    return _BY_ALIAS[fold(name)]


@dataclass(frozen=True)
class Command:
    name: str  # canonical English name
    medication: str | None = None
    request_id: int | None = None
    note: str | None = None
    reason: str | None = None
    locale: str = field(default="en", compare=False)  # the language of the command word typed

    @property
    def role(self) -> Role:
        return spec(self.name).role


@dataclass(frozen=True)
class CommandError:
    name: str | None  # canonical name when the command was recognised
    reason: Reason
    arg: str | None = None  # the argument at fault, for missing_argument / invalid_request_id
    locale: str | None = field(default=None, compare=False)  # the command word's language, when recognised
    # unknown_command: close commands as (canonical name, locale), nearest first
    suggestions: tuple[tuple[str, str], ...] = field(default=(), compare=False)


def suggest(word: str) -> tuple[tuple[str, str], ...]:
    """The known command words nearest to `word`, within a typo: (canonical name, locale)."""
    folded = fold(word)
    if len(folded) < 3:
        return ()
    limit = 2 if len(folded) >= 7 else 1
    found = []
    for alias, spec_ in _BY_ALIAS.items():
        distance = DamerauLevenshtein.distance(folded, alias, score_cutoff=limit)
        if distance <= limit:
            found.append((distance, spec_.name, _LOCALE_OF[alias]))
    best = min((d for d, _, _ in found), default=0)
    return tuple((name, locale) for d, name, locale in sorted(found) if d == best)


def _clean(text: str) -> str:
    """Remove invisible characters; trim each line and collapse runs of spaces."""
    lines = [" ".join(line.split()) for line in strip_invisible(text).splitlines()]
    return "\n".join(lines).strip()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\n\t\r" for ch in text)


def parse(text: str, max_length: int = DEFAULT_MAX_LENGTH) -> Command | CommandError | None:
    """Parse a message body. None means: not a command, just a message."""
    stripped = strip_invisible(text).lstrip()
    if len(stripped) < 2 or stripped[0] != "!" or not stripped[1].isalpha():
        return None
    word, rest = _split_first(stripped[1:])
    found = _BY_ALIAS.get(fold(word))
    name = found.name if found else None
    locale = _LOCALE_OF.get(fold(word))
    if len(text) > max_length:
        return CommandError(name, "too_long", locale=locale)
    if _has_control(stripped):
        return CommandError(name, "control_characters", locale=locale)
    if found is None:
        return CommandError(None, "unknown_command", suggestions=suggest(word))
    values: dict[str, object] = {}
    for arg in found.args:
        if arg.rest:
            value = _clean(rest)
            rest = ""
        else:
            token, rest = _split_first(rest.lstrip())
            value = token
        if not value:
            if arg.required:
                return CommandError(name, "missing_argument", arg.name, locale=locale)
            continue
        if arg.kind == "request_id":
            number = parse_id(value)
            if number is None:
                return CommandError(name, "invalid_request_id", arg.name, locale=locale)
            values[arg.name] = number
        else:
            values[arg.name] = value
    return Command(found.name, **values, locale=locale or "en")  # type: ignore[arg-type]


def _split_first(text: str) -> tuple[str, str]:
    """("approve R7 ok thanks") -> ("approve", "R7 ok thanks"), splitting on any whitespace."""
    parts = text.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


def usage(name: str, locale: str) -> str:
    """"!renouveler <médicament>" / "!renew <medication>"."""
    s = spec(name)
    return " ".join([f"!{s.display_name(locale)}", *(a.label(locale) for a in s.args)])


def help_text(locale: str, *, texts: Texts | None = None, role: Role | None = None) -> str:
    """Intro, one line per command (for `role` and everyone, or all commands if role is None),
    and one line pointing to the pinned emergency banner (which it does not repeat).

    For a patient or a practitioner it fits on a phone screen: at most 8 lines.
    """
    texts = texts or Texts.default()
    lines = [texts.get("help_intro", locale)]
    other = "en" if locale == "fr" else "fr"
    for s in COMMANDS:
        if role is not None and s.role not in (role, "anyone"):
            continue
        lines.append(f"• {usage(s.name, locale)} — {texts.get(s.help_key, locale)} (!{s.display_name(other)})")
    lines.append(texts.get("help_banner", locale))
    return "\n".join(lines)
