"""matrix.to permalinks (the spec's form: identifiers percent-encoded, `via` the server)."""

from __future__ import annotations

from urllib.parse import quote


def server_of(matrix_id: str) -> str:
    """'!abc:clinic.example' -> 'clinic.example' (ports kept)."""
    return matrix_id.split(":", 1)[1]


def permalink(room_id: str, event_id: str | None = None) -> str:
    url = "https://matrix.to/#/" + quote(room_id, safe="")
    if event_id:
        url += "/" + quote(event_id, safe="")
    return url + "?via=" + quote(server_of(room_id), safe="")
