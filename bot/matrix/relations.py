"""What a message event means, read from its `m.relates_to`: a plain message, a reply, an edit or
a message in a thread, and the text the user actually typed (reply fallback removed).

The emergency lexicon and the command parser only ever see `Incoming.text`: a reply that quotes
the banner or an emergency notice must not look like an emergency, and `!accepter R1` typed as
a reply is a command. Matrix spec, "Rich replies" (fallbacks) and "Threading".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REPLACE = "m.replace"
THREAD = "m.thread"

_MX_REPLY = re.compile(r"<mx-reply>.*?</mx-reply>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Incoming:
    """One message as the bot reads it."""

    text: str  # what the user typed: reply fallback stripped; for an edit, the new text
    is_edit: bool = False  # an edit (m.replace, or m.new_content)
    edit_of: str | None = None  # the edited event, when the relation names it
    thread_root: str | None = None  # sent in this thread (m.thread)
    reply_to: str | None = None  # a reply to this event (not a thread's own fallback)


def strip_reply_fallback(body: str) -> str:
    """The body without its reply fallback: the leading lines that start with '>' and the blank
    line after them."""
    lines = body.split("\n")
    n = 0
    while n < len(lines) and lines[n].startswith(">"):
        n += 1
    if n == 0:
        return body
    if n < len(lines) and lines[n].strip() == "":
        n += 1
    return "\n".join(lines[n:])


def strip_html_reply_fallback(formatted: str) -> str:
    """The formatted body without its `<mx-reply>…</mx-reply>` block."""
    return _MX_REPLY.sub("", formatted, count=1)


def _relation(content: dict[str, Any]) -> dict[str, Any]:
    rel = content.get("m.relates_to")
    return rel if isinstance(rel, dict) else {}


def _event_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_message(content: dict[str, Any]) -> Incoming:
    """Classify a decrypted m.room.message content and extract what the user typed."""
    rel = _relation(content)
    body = content.get("body")
    body = body if isinstance(body, str) else ""
    new = content.get("m.new_content")
    # m.relates_to travels in clear beside the ciphertext; m.new_content is encrypted. Either
    # one marks an edit, so a server that drops the relation cannot turn an edit into a command.
    if rel.get("rel_type") == REPLACE or new is not None:
        if isinstance(new, dict) and isinstance(new.get("body"), str):
            text = new["body"]
        else:  # no m.new_content: the fallback body, "* new text"
            text = body[2:] if body.startswith("* ") else body
        edit_of = _event_id(rel.get("event_id")) if rel.get("rel_type") == REPLACE else None
        return Incoming(text=text, is_edit=True, edit_of=edit_of)
    thread_root = _event_id(rel.get("event_id")) if rel.get("rel_type") == THREAD else None
    in_reply = rel.get("m.in_reply_to")
    reply_to = _event_id(in_reply.get("event_id")) if isinstance(in_reply, dict) else None
    if thread_root is not None and rel.get("is_falling_back") is True:
        reply_to = None  # a plain thread message: its m.in_reply_to is only for older clients
    text = strip_reply_fallback(body) if reply_to is not None else body
    return Incoming(text=text, thread_root=thread_root, reply_to=reply_to)


def answer_relation(answer_to: str, thread_root: str | None) -> dict[str, Any]:
    """`m.relates_to` of the bot's answer to `answer_to`: a reply, inside the thread if the
    question came from one. There it is a real reply to the question (`is_falling_back`
    false), which thread-unaware clients show as a reply too."""
    if thread_root is None:
        return {"m.in_reply_to": {"event_id": answer_to}}
    return {
        "rel_type": THREAD,
        "event_id": thread_root,
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": answer_to},
    }
