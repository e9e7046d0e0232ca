"""matrix.to permalinks (the spec's form: identifiers percent-encoded, `via` a server).

Room ids of room version 12 carry no server name, so `via` is given (the bot's server)."""

from __future__ import annotations

from urllib.parse import quote


def server_of(matrix_id: str) -> str | None:
    """'@bot:clinic.example' -> 'clinic.example' (ports kept); None for a v12 room id."""
    return matrix_id.split(":", 1)[1] if ":" in matrix_id else None


def permalink(room_id: str, event_id: str | None = None, via: str | None = None) -> str:
    url = "https://matrix.to/#/" + quote(room_id, safe="")
    if event_id:
        url += "/" + quote(event_id, safe="")
    via = via or server_of(room_id)
    return url + ("?via=" + quote(via, safe="") if via else "")
