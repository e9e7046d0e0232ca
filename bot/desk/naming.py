"""Pair-room names that tell one practitioner's rooms apart and still show the patient who
their practitioner is.

Why the room name (m.room.name) and not something per viewer: a Matrix client computes a
room's name (matrix-js-sdk `Room.calculateRoomName`, what Element shows) from, in order, the
`m.room.name` state, the canonical alias, then the other members ("heroes"). State is shared,
so a name is the same for the patient and the practitioner; heroes would show each side the
other's *profile* name, which the bot does not control and which two patients may share. So
the bot sets one name holding the practitioner's name and a patient label that is unique among
that practitioner's patients.

Room names are not end-to-end encrypted (homeservers and their admins read them), so the
default label is the patient's roster id — already in the `carebot.pair` state, nothing new
leaks. A clinic on a private, unfederated homeserver may opt in to initials or full names
(`desk.room_names`); the README explains the trade-off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from bot.care.emergency import fold

if TYPE_CHECKING:
    from bot.care.service import CareContext

Mode = Literal["patient_id", "initials", "full_name"]


def initials(display_name: str) -> str:
    """"Alice Dupont" -> "A. D."; "Jean-Marc Le Goff" -> "J.-M. L. G."."""
    words = [w for w in display_name.replace(".", " ").split() if w]
    out = []
    for w in words:
        parts = [p for p in w.split("-") if p]
        out.append("-".join(p[0].upper() + "." for p in parts))
    return " ".join(out)


def patient_label(mode: Mode, patient_id: str, display_name: str, same_name_ids: Iterable[str] = ()) -> str:
    """The patient's part of a pair-room name, unique among one practitioner's patients.

    `same_name_ids`: ids of the practitioner's other patients whose display name folds to the
    same text (only used in full_name mode, where the id is added to tell them apart).
    """
    if mode == "patient_id":
        return patient_id
    if mode == "initials":
        return f"{initials(display_name)} ({patient_id})"
    if any(other != patient_id for other in same_name_ids):
        return f"{display_name} ({patient_id})"
    return display_name


def labels_for(mode: Mode, patients: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{patient id: label} for one practitioner's patients, given (id, display name) pairs."""
    items = list(patients)
    by_name: dict[str, list[str]] = {}
    for pid, name in items:
        by_name.setdefault(fold(" ".join(name.split())), []).append(pid)
    return {pid: patient_label(mode, pid, name, by_name[fold(" ".join(name.split()))]) for pid, name in items}


def pair_room_names(care: "CareContext", mode: Mode) -> dict[tuple[str, str], str]:
    """{(patient id, practitioner id): room name} for every verified pair, in the patient's
    language: the practitioner's name and the patient's label."""
    by_practitioner: dict[str, list[tuple[str, str]]] = {}
    pairs = care.roster.verified_pairs()
    for p in pairs:
        by_practitioner.setdefault(p.practitioner.id, []).append((p.patient.id, p.patient.display_name))
    labels = {pid: labels_for(mode, patients) for pid, patients in by_practitioner.items()}
    return {
        (p.patient.id, p.practitioner.id): care.texts.get(
            "room_name_labelled",
            care.locale_of(p, p.patient.matrix_id),
            practitioner=p.practitioner.display_name,
            label=labels[p.practitioner.id][p.patient.id],
        )
        for p in pairs
    }
