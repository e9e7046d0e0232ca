"""Eligibility policies for renewal requests, loaded from `<policies>/*.yaml`.

Which file holds what: every YAML file in the policies directory starts with a `kind:` key.
- `kind: rules`     — eligibility rules (any file name; all such files are combined, e.g. renewals.yaml)
- `kind: emergency` — the emergency lexicon, only in emergency.yaml (see emergency.py)
- `kind: texts`     — message overrides, only in texts.yaml (see texts.py)
- `kind: synonyms`  — brand names and abbreviations, only in synonyms.yaml (see matching.py)

A rules file::

    kind: rules
    rules:
      - id: recent-consultation            # unique across all files, [a-z0-9_-]+
        type: last_consultation_within     # see RULE_TYPES
        days: 365                          # the type's parameters, inline
        reason:                            # what the patient reads when the rule fails
          fr: "Votre dernière consultation date de plus de {days} jours."
          en: "Your last consultation was more than {days} days ago."

Every rule is evaluated (no short-circuit) so `explain` can report each one; a request is
eligible when all pass.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bot.care.decision import Decision, RuleResult, explain
from bot.care.matching import NO_SYNONYMS, MatchResult, Synonyms, contains_term, deny_forms, match, match_treatment
from bot.care.medication import (  # noqa: F401 - re-exported: the policy API names medications
    clean_medication,
    medication_name,
    normalize_medication,
)
from bot.care.roster import Pair, Roster, Treatment, check_id
from bot.care.texts import placeholders
from bot.yamlutil import ConfigError, ConfigErrors, KeyPath, YamlDoc, load_yaml, validate

RULES_KIND = "rules"
SYNONYMS_FILE = "synonyms.yaml"
OTHER_KINDS = {"emergency": "emergency.yaml", "texts": "texts.yaml", "synonyms": "synonyms.yaml"}


# --- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EligibilityContext:
    pair: Pair | None
    medication: str
    today: date
    open_medications: tuple[str, ...] = ()  # normalized medications of this patient's pending requests with this practitioner
    open_count: int = 0  # this patient's pending requests with this practitioner


@dataclass(frozen=True)
class _Eval:
    ctx: EligibilityContext
    found: MatchResult
    medication: str  # as understood
    synonyms: Synonyms = NO_SYNONYMS

    @property
    def treatment(self) -> Treatment | None:
        return self.found.treatment  # type: ignore[return-value]


def _rule_id(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9_-]+", value):
        raise ValueError(f"invalid rule id '{value}'. Use lowercase letters, digits, '-' and '_' (like 'recent-consultation').")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty. Write the sentence the patient will read.")
    return value.strip()


Text = Annotated[str, AfterValidator(_text)]


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    fr: Text
    en: Text


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: Annotated[str, AfterValidator(_rule_id)]
    type: str
    reason: Reason

    params: ClassVar[tuple[str, ...]] = ()  # fields usable as {placeholders} in reasons

    def check(self, e: _Eval) -> tuple[bool, str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def reason_text(self, locale: str) -> str:
        template = self.reason.fr if locale == "fr" else self.reason.en
        return template.format(**{p: getattr(self, p) for p in self.params})


class VerifiedPair(Rule):
    type: Literal["verified_pair"]

    def check(self, e: _Eval) -> tuple[bool, str]:
        pair = e.ctx.pair
        if pair is None:
            return False, "no care entry links this patient and this practitioner"
        if not pair.practitioner.messaging:
            return False, "the practitioner has not opted in to messaging"
        if pair.care.last_consultation is None:
            return False, "no consultation on record"
        return True, "verified pair"


class LastConsultationWithin(Rule):
    type: Literal["last_consultation_within"]
    days: int = Field(ge=1)
    params: ClassVar[tuple[str, ...]] = ("days",)

    def check(self, e: _Eval) -> tuple[bool, str]:
        last = e.ctx.pair.care.last_consultation if e.ctx.pair else None
        if last is None:
            return False, "no consultation on record"
        age = (e.ctx.today - last).days
        return age <= self.days, f"last consultation {last.isoformat()}, {age} days ago (limit {self.days})"


class LongTermTreatment(Rule):
    type: Literal["long_term_treatment"]

    def check(self, e: _Eval) -> tuple[bool, str]:
        if e.found.ambiguous:
            names = ", ".join(repr(t.name) for t in e.found.candidates)  # type: ignore[attr-defined]
            return False, f"ambiguous: fits {names}; the patient is asked which"
        if e.treatment is None:
            return False, "not one of this practitioner's treatments for this patient"
        if not e.treatment.long_term:
            return False, f"matches treatment {e.treatment.name!r}, which is not long-term"
        return True, f"long-term treatment {e.treatment.name!r}"


class DenyList(Rule):
    type: Literal["deny_list"]
    terms: tuple[Text, ...] = Field(min_length=1)

    def check(self, e: _Eval) -> tuple[bool, str]:
        forms = deny_forms(e.ctx.medication, e.synonyms) + deny_forms(e.medication, e.synonyms)
        hits = sorted({t for t in self.terms if contains_term(forms, t, prefix=t.rstrip().endswith("*"))})
        return (not hits), (f"on the deny list: {', '.join(hits)}" if hits else "not on the deny list")


class MaxOpenRequests(Rule):
    type: Literal["max_open_requests"]
    max: int = Field(ge=1)
    params: ClassVar[tuple[str, ...]] = ("max",)

    def check(self, e: _Eval) -> tuple[bool, str]:
        return e.ctx.open_count < self.max, f"{e.ctx.open_count} open request(s), at most {self.max}"


class NoDuplicateOpen(Rule):
    type: Literal["no_duplicate_open"]

    def check(self, e: _Eval) -> tuple[bool, str]:
        wanted = normalize_medication(e.medication)
        duplicate = wanted in {normalize_medication(m) for m in e.ctx.open_medications}
        return (not duplicate), ("an open request already exists for it" if duplicate else "no open request for it")


class PractitionerRenewalsEnabled(Rule):
    type: Literal["practitioner_renewals_enabled"]
    disabled_for: tuple[Annotated[str, AfterValidator(check_id)], ...] = ()

    def check(self, e: _Eval) -> tuple[bool, str]:
        if e.ctx.pair is None:
            return False, "no practitioner"
        off = e.ctx.pair.practitioner.id in self.disabled_for
        return (not off), ("renewals disabled for this practitioner" if off else "renewals enabled for this practitioner")


RULE_TYPES: Mapping[str, type[Rule]] = MappingProxyType(
    {
        "verified_pair": VerifiedPair,
        "last_consultation_within": LastConsultationWithin,
        "long_term_treatment": LongTermTreatment,
        "deny_list": DenyList,
        "max_open_requests": MaxOpenRequests,
        "no_duplicate_open": NoDuplicateOpen,
        "practitioner_renewals_enabled": PractitionerRenewalsEnabled,
    }
)


@dataclass(frozen=True)
class _Source:
    doc: YamlDoc
    path: KeyPath


@dataclass(frozen=True)
class Policies:
    rules: tuple[Rule, ...]
    files: tuple[str, ...]
    digest: str
    _sources: Mapping[str, _Source] = field(default_factory=dict, repr=False, compare=False)
    synonyms: Synonyms = NO_SYNONYMS

    @classmethod
    def load(cls, policies_dir: str | Path) -> Policies:
        """Load every `kind: rules` file of the directory; ConfigErrors lists every problem."""
        directory = Path(policies_dir)
        if not directory.is_dir():
            raise ConfigErrors(
                [ConfigError(str(directory), None, "", "policies directory not found. Create it (copy the shipped policies/) or fix policies.path.")]
            )
        errors: list[ConfigError] = []
        rules: list[Rule] = []
        sources: dict[str, _Source] = {}
        files: list[str] = []
        digest = hashlib.sha256()
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                doc = load_yaml(path)
            except ConfigErrors as exc:
                errors.extend(exc.errors)
                continue
            kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
            if kind in OTHER_KINDS:
                if path.name != OTHER_KINDS[kind]:
                    errors.append(doc.error(("kind",), f"a 'kind: {kind}' file must be named {OTHER_KINDS[kind]}. Rename it."))
                continue
            if kind != RULES_KIND:
                errors.append(
                    doc.error(("kind",), "every policies file must start with 'kind: rules', 'kind: emergency', 'kind: texts' or 'kind: synonyms'. Add or fix it.")
                )
                continue
            files.append(str(path))
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
            for rule, where in _parse_rules(doc, errors):
                if rule.id in sources:
                    other = sources[rule.id]
                    errors.append(
                        doc.error((*where, "id"), f"rule id '{rule.id}' is already used in {other.doc.file}. Rule ids must be unique.")
                    )
                    continue
                sources[rule.id] = _Source(doc, where)
                rules.append(rule)
        synonyms = NO_SYNONYMS
        try:
            synonyms = Synonyms.load(directory)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        if synonyms.digest:  # the synonyms change decisions: they are part of the policy hash
            digest.update(SYNONYMS_FILE.encode() + b"\0" + synonyms.digest + b"\0")
        if not rules and not errors:
            errors.append(
                ConfigError(str(directory), None, "", "no eligibility rules found. Add a 'kind: rules' file (see the shipped policies/renewals.yaml).")
            )
        if errors:
            raise ConfigErrors(errors)
        return cls(tuple(rules), tuple(files), digest.hexdigest(), MappingProxyType(sources), synonyms)

    def policy_hash(self) -> str:
        """sha256 (hex) of the rule and synonym files' names and bytes, for the audit trail."""
        return self.digest

    def check_against(self, roster: Roster) -> list[ConfigError]:
        """Cross-checks with the roster: practitioner ids named by rules must exist."""
        errors = []
        for rule in self.rules:
            if isinstance(rule, PractitionerRenewalsEnabled):
                src = self._sources[rule.id]
                for i, pid in enumerate(rule.disabled_for):
                    if roster.practitioner(pid) is None:
                        errors.append(
                            src.doc.error((*src.path, "disabled_for", i), f"unknown practitioner '{pid}'. Use an id from the roster's 'practitioners'.")
                        )
        return errors

    def evaluate(self, ctx: EligibilityContext) -> Decision:
        found = match(ctx.pair.care.treatments, ctx.medication, self.synonyms) if ctx.pair else MatchResult(None)
        treatment: Treatment | None = found.treatment  # type: ignore[assignment]
        understood = treatment.name if treatment is not None else clean_medication(ctx.medication)
        e = _Eval(ctx, found, understood, self.synonyms)
        results = []
        for rule in self.rules:
            passed, detail = rule.check(e)
            results.append(RuleResult(rule.id, rule.type, passed, rule.reason_text("fr"), rule.reason_text("en"), detail))
        return Decision(
            all(r.passed for r in results),
            understood,
            tuple(results),
            candidates=tuple(t.name for t in found.candidates),  # type: ignore[attr-defined]
            renewable=tuple(t.name for t in ctx.pair.long_term_treatments) if ctx.pair else (),
        )


def _parse_rules(doc: YamlDoc, errors: list[ConfigError]) -> list[tuple[Rule, KeyPath]]:
    data: dict[str, Any] = doc.data
    for key in data:
        if key not in ("kind", "rules"):
            errors.append(doc.error((key,), f"unknown key '{key}'; allowed keys: kind, rules. Remove it."))
    raw = data.get("rules")
    if not isinstance(raw, list) or not raw:
        errors.append(doc.error(("rules",), "expected a list of rules ('- id: ...' items). Add at least one rule."))
        return []
    out = []
    for i, item in enumerate(raw):
        where: KeyPath = ("rules", i)
        if not isinstance(item, dict):
            errors.append(doc.error(where, "expected a rule with 'id', 'type' and 'reason'."))
            continue
        kind = item.get("type")
        model = RULE_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            what = f"unknown rule type '{kind}'" if kind is not None else "missing 'type'"
            errors.append(doc.error((*where, "type"), f"{what}; known types: {', '.join(RULE_TYPES)}. Fix it."))
            continue
        bad = _check_reason_placeholders(doc, item.get("reason"), model, where, errors)
        try:
            rule: Rule = validate(model, doc, item, where)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        if not bad:
            out.append((rule, where))
    return out


def _check_reason_placeholders(doc: YamlDoc, reason: object, model: type[Rule], where: KeyPath, errors: list[ConfigError]) -> bool:
    """Check {placeholders} in the raw reason texts; True if any is wrong."""
    bad = False
    for lang, template in (reason.items() if isinstance(reason, dict) else ()):
        if not isinstance(template, str):
            continue
        key = (*where, "reason", lang)
        try:
            used = placeholders(template)
        except ValueError:
            errors.append(doc.error(key, "unbalanced { or }. Write {{ and }} for a literal brace."))
            bad = True
            continue
        unknown = sorted(used - set(model.params))
        if unknown:
            allowed = ", ".join("{" + p + "}" for p in model.params) or "none"
            errors.append(doc.error(key, f"unknown placeholder {{{unknown[0]}}}; this rule can use: {allowed}. Fix it."))
            bad = True
    return bad


__all__ = [
    "Decision",
    "EligibilityContext",
    "Policies",
    "RULE_TYPES",
    "Rule",
    "RuleResult",
    "clean_medication",
    "explain",
    "match_treatment",
    "medication_name",
    "normalize_medication",
]
