"""A roster written as FHIR R4 resources: for the demo (`make run-fhir`), the tests and the
benchmark, so the same people exist on a FHIR server. The inverse of bot/fhir/mapping.py.

Resources get the roster ids as logical ids (created with PUT, as a clinic's import would),
and are sent in batch Bundles of `batch` entries.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

from bot.care.roster import Roster
from bot.fhir.mapping import uri_from_mxid


def _human(display_name: str) -> list[dict[str, Any]]:
    return [{"text": display_name}]


def _telecom(mxid: str) -> list[dict[str, Any]]:
    return [{"system": "other", "value": uri_from_mxid(mxid)}]


def roster_resources(roster: Roster, default_locale: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in roster.practitioners:
        out.append({"resourceType": "Practitioner", "id": p.id, "active": True, "name": _human(p.display_name), "telecom": _telecom(p.matrix_id)})
        if p.messaging:
            out.append({
                "resourceType": "PractitionerRole", "id": f"role-{p.id}", "active": True,
                "practitioner": {"reference": f"Practitioner/{p.id}"}, "telecom": _telecom(p.matrix_id),
            })
    for pat in roster.patients:
        res: dict[str, Any] = {"resourceType": "Patient", "id": pat.id, "active": True, "name": _human(pat.display_name), "telecom": _telecom(pat.matrix_id)}
        locale = pat.locale or default_locale
        if locale:
            res["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": locale}]}, "preferred": True}]
        out.append(res)
        for c in pat.care:
            if c.last_consultation is not None:
                out.append({
                    "resourceType": "Encounter", "id": f"enc-{pat.id}-{c.practitioner}", "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": f"Patient/{pat.id}"},
                    "participant": [{"individual": {"reference": f"Practitioner/{c.practitioner}"}}],
                    "period": {"start": f"{c.last_consultation.isoformat()}T09:00:00Z", "end": f"{c.last_consultation.isoformat()}T09:20:00Z"},
                })
            for i, t in enumerate(c.treatments):
                mr: dict[str, Any] = {
                    "resourceType": "MedicationRequest", "id": f"mr-{pat.id}-{c.practitioner}-{i}", "status": "active", "intent": "order",
                    "medicationCodeableConcept": {"text": t.name},
                    "subject": {"reference": f"Patient/{pat.id}"},
                    "requester": {"reference": f"Practitioner/{c.practitioner}"},
                    "authoredOn": (c.last_consultation or dt.date.today()).isoformat(),
                }
                if t.long_term:
                    mr["courseOfTherapyType"] = {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "continuous"}]}
                out.append(mr)
    return out


def upload(base_url: str, resources: list[dict[str, Any]], batch: int = 500, token: str | None = None) -> None:
    """PUT every resource (batch Bundles); raises if any entry fails."""
    headers = {"content-type": "application/fhir+json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    for start in range(0, len(resources), batch):
        chunk = resources[start : start + batch]
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in chunk],
        }
        req = urllib.request.Request(base_url.rstrip("/"), data=json.dumps(bundle).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=300) as resp:
            answer = json.load(resp)
        bad = [e["response"]["status"] for e in answer.get("entry", []) if not str(e["response"]["status"]).startswith("2")]
        if bad:
            raise RuntimeError(f"{len(bad)} resources refused by {base_url} (statuses {sorted(set(bad))})")
