"""Every message the bot sends, in French and English.

The packaged defaults (bot/care/default_texts.yaml) are overridden key by key and language by
language by the clinic's `<policies>/texts.yaml` (optional). An override must keep exactly the
{placeholders} of the original, and the emergency texts must keep the emergency numbers.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from bot.yamlutil import ConfigError, ConfigErrors, YamlDoc, load_yaml

LOCALES = ("fr", "en")
FILE_NAME = "texts.yaml"
KIND = "texts"
DEFAULTS_PATH = Path(__file__).with_name("default_texts.yaml")

# Texts that must keep these numbers whatever the clinic writes.
REQUIRED_NUMBERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "disclaimer": ("15", "112", "114", "3114"),
        "emergency_notice": ("15", "112", "114", "3114"),
        "topic": ("15", "112"),
        "channel_closed": ("15", "112", "114", "3114"),
    }
)

# The practitioner's decision notifies the patient: its first line, shown on a lock screen,
# must not carry what the bot fills in from the request (medication, note, reason).
FIRST_LINE_PRIVATE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {key: ("medication", "note", "reason") for key in ("renewal_approved", "renewal_approved_note", "renewal_denied")}
)


def placeholders(template: str) -> set[str]:
    """{names} used by a str.format template; ValueError if its braces are malformed."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _has_number(text: str, number: str) -> bool:
    return re.search(rf"(?<!\d){number}(?!\d)", text) is not None


@dataclass(frozen=True)
class Texts:
    table: Mapping[str, Mapping[str, str]]

    @classmethod
    def default(cls) -> Texts:
        table, errors = _read(load_yaml(DEFAULTS_PATH), None)
        if errors:  # a packaging bug, not a clinic problem
            raise ConfigErrors(errors)
        return cls._freeze(table)

    @classmethod
    def load(cls, policies_dir: str | Path) -> Texts:
        """Defaults overridden by `<policies_dir>/texts.yaml` if it exists."""
        base = cls.default()
        path = Path(policies_dir) / FILE_NAME
        if not path.exists():
            return base
        overrides, errors = _read(load_yaml(path), base.table)
        if errors:
            raise ConfigErrors(errors)
        merged = {key: {**langs, **overrides.get(key, {})} for key, langs in base.table.items()}
        return cls._freeze(merged)

    @staticmethod
    def _freeze(table: Mapping[str, Mapping[str, str]]) -> Texts:
        return Texts(MappingProxyType({k: MappingProxyType(dict(v)) for k, v in table.items()}))

    def keys(self) -> list[str]:
        return list(self.table)

    def get(self, key: str, locale: str, **params: object) -> str:
        """The text for `key` in `locale`, with {placeholders} filled in from `params`.

        Unknown key or missing param -> KeyError; unknown locale -> ValueError (bugs, not input).
        """
        if locale not in LOCALES:
            raise ValueError(f"unknown locale {locale!r}")
        return self.table[key][locale].format(**params)


def _read(doc: YamlDoc, base: Mapping[str, Mapping[str, str]] | None) -> tuple[dict[str, dict[str, str]], list[ConfigError]]:
    """Parse a texts file. With `base` (the defaults), check overrides against it."""
    errors: list[ConfigError] = []
    data = doc.data
    if not isinstance(data, dict):
        return {}, [doc.error((), f"expected 'kind: {KIND}' and a 'texts:' block.")]
    for key in data:
        if key not in ("kind", "texts"):
            errors.append(doc.error((key,), f"unknown key '{key}'; allowed keys: kind, texts. Remove it."))
    if data.get("kind") != KIND:
        errors.append(doc.error(("kind",), f"this file must contain 'kind: {KIND}'. Fix the kind."))
    texts = data.get("texts") or {}
    if not isinstance(texts, dict):
        return {}, [*errors, doc.error(("texts",), "expected a block of message keys (like 'disclaimer:').")]
    table: dict[str, dict[str, str]] = {}
    for key, langs in texts.items():
        key_s = str(key)
        if base is not None and key_s not in base:
            errors.append(doc.error(("texts", key_s), f"unknown text key '{key_s}'; known keys: {', '.join(base)}. Fix the spelling."))
            continue
        if not isinstance(langs, dict):
            errors.append(doc.error(("texts", key_s), "expected 'fr:' and/or 'en:' lines under this key."))
            continue
        table[key_s] = {}
        for lang, template in langs.items():
            where = ("texts", key_s, lang)
            if lang not in LOCALES:
                errors.append(doc.error(where, f"unknown language '{lang}'; use 'fr' or 'en'."))
                continue
            if not isinstance(template, str) or not template.strip():
                errors.append(doc.error(where, "expected a non-empty text. Quote it if it contains ':' or starts with '!'."))
                continue
            try:
                used = placeholders(template)
            except ValueError:
                errors.append(doc.error(where, "unbalanced { or }. Write {{ and }} for a literal brace."))
                continue
            if base is not None:
                expected = placeholders(base[key_s]["fr"]) | placeholders(base[key_s]["en"])
                if used - expected:
                    unknown = ", ".join("{" + p + "}" for p in sorted(used - expected))
                    allowed = ", ".join("{" + p + "}" for p in sorted(expected)) or "none"
                    errors.append(doc.error(where, f"unknown placeholder {unknown}; this text can use: {allowed}. Fix it."))
                if expected - used:
                    missing = ", ".join("{" + p + "}" for p in sorted(expected - used))
                    errors.append(doc.error(where, f"missing placeholder {missing}; the bot fills it in. Add it back."))
            for number in REQUIRED_NUMBERS.get(key_s, ()):
                if not _has_number(template, number):
                    errors.append(doc.error(where, f"must mention the emergency number {number}. Add it back."))
            on_first = placeholders(template.split("\n", 1)[0]) & set(FIRST_LINE_PRIVATE.get(key_s, ()))
            if on_first:
                names = ", ".join("{" + p + "}" for p in sorted(on_first))
                errors.append(doc.error(where, f"{names} on the first line, which a phone shows on its lock screen. Move it to a later line (use |-)."))
            table[key_s][lang] = template
        if base is None:
            for lang in LOCALES:
                if lang not in table[key_s]:
                    errors.append(doc.error(("texts", key_s), f"missing the '{lang}' text. Add it."))
    return table, errors
