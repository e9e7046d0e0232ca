"""The privacy rule of logs holds on error paths too: configuration errors lose the values they
quote, and no log line (library messages and tracebacks included) carries a Matrix user id."""

from __future__ import annotations

import json
import logging

import structlog

from bot.logs import hide_user_ids, private_text, setup_logging


def test_a_configuration_error_keeps_its_advice_but_not_the_values_it_quotes():
    message = "'@alice:clinic.example' is already used by patients[0] ('Alice Dupont', \"Levothyroxine 75 µg\"). Ids must be unique."
    safe = private_text(message)
    for secret in ("alice", "Alice Dupont", "Levothyroxine"):
        assert secret not in safe
    assert "is already used by patients[0]" in safe and "Ids must be unique." in safe


def test_a_bare_matrix_id_in_a_message_is_hidden():
    assert private_text("patient @bob.durand:clinic.example:8448 unknown") == "patient @… unknown"


def test_every_field_of_every_line_loses_matrix_ids_and_room_ids_stay():
    event = {"event": "x", "error": "Forbidden: @alice:clinic.example is banned",
             "room_id": "!abc:clinic.example", "nested": {"users": ["@bob:x.org"]}}
    out = hide_user_ids(None, "error", event)
    assert out["error"] == "Forbidden: @… is banned"
    assert out["room_id"] == "!abc:clinic.example"
    assert out["nested"] == {"users": ["@…"]}


def test_library_logs_and_tracebacks_are_json_lines_without_matrix_ids(capsys):
    setup_logging("json", "info")
    try:
        logging.getLogger("nio.crypto").error("Received undecryptable event from @alice:clinic.example")
        log = structlog.get_logger("carebot")
        try:
            raise KeyError("@alice:clinic.example")
        except KeyError:
            log.exception("event.failed", room_id="!r:x")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    assert [line["event"] for line in lines] == ["library.log", "event.failed"]
    assert lines[0]["library"] == "nio.crypto" and lines[0]["level"] == "error"
    assert "Traceback" in lines[1]["exception"]
    assert "@alice" not in json.dumps(lines)
