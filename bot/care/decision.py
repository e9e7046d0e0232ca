"""A renewal decision: each rule's result, what the patient reads, and the admin's report.

Made by `Policies.evaluate` (policy.py); `explain` is what `carebot policy explain` prints.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    rule_type: str
    passed: bool
    reason_fr: str  # patient-facing, meaningful when not passed
    reason_en: str
    detail: str  # admin-facing (CLI only: may name the medication; never log it)


@dataclass(frozen=True)
class Decision:
    eligible: bool
    medication: str  # as understood: the roster's treatment name when matched, else the cleaned user text
    results: tuple[RuleResult, ...]
    candidates: tuple[str, ...] = ()  # ambiguous: the treatments it could be (2 or more)
    renewable: tuple[str, ...] = ()  # the pair's long-term treatments, to list on a refusal

    @property
    def unmatched(self) -> bool:
        """True when the long-term-treatment rule failed because nothing (or several) fit."""
        return any(r.rule_type == "long_term_treatment" and not r.passed for r in self.results)

    @property
    def failed_rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule_id for r in self.results if not r.passed)

    @property
    def failed_rule_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.rule_type for r in self.results if not r.passed))

    def reasons(self, locale: str) -> list[str]:
        return [(r.reason_fr if locale == "fr" else r.reason_en) for r in self.results if not r.passed]


def explain(decision: Decision, locale: str = "fr") -> str:
    """A rule-by-rule report for the CLI (admin-facing; may show the medication)."""
    verdict = "ELIGIBLE" if decision.eligible else f"NOT ELIGIBLE (failed: {', '.join(decision.failed_rule_ids)})"
    lines = [f"medication (as understood): {decision.medication}", f"decision: {verdict}"]
    for r in decision.results:
        lines.append(f"  [{'ok' if r.passed else 'FAIL'}] {r.rule_id} ({r.rule_type}): {r.detail}")
        if not r.passed:
            lines.append(f"         patient reads ({locale}): {r.reason_fr if locale == 'fr' else r.reason_en}")
    return "\n".join(lines)
