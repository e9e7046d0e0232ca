"""Turn the bot's answers into Matrix event contents: m.notice (m.text when the reader must be
notified), plain + HTML, replies, mentions.

Text from users (a medication, a note, a reason) is escaped in the HTML body. Plain bodies are
what clients without HTML show; both say the same thing.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from bot.matrix.relations import answer_relation

HTML_FORMAT = "org.matrix.custom.html"


def to_html(plain: str) -> str:
    """Escape text and keep its line breaks; lines starting with '- ' become a list."""
    out: list[str] = []
    in_list = False
    for line in plain.split("\n"):
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        out.append(html.escape(line) + "<br>")
    if in_list:
        out.append("</ul>")
    text = "".join(out)
    return text[:-4] if text.endswith("<br>") else text


def mention_pill(user_id: str, label: str) -> str:
    return f'<a href="https://matrix.to/#/{html.escape(user_id)}">{html.escape(label)}</a>'


def notice(
    plain: str,
    *,
    reply_to: str | None = None,
    thread_root: str | None = None,
    mentions: Sequence[tuple[str, str]] = (),
    addressed: tuple[str, str, str] | None = None,
    extra: dict[str, Any] | None = None,
    notify: bool = False,
) -> dict[str, Any]:
    """An m.notice, or an m.text with `notify`: Element's default push rules silence every
    m.notice (.m.rule.suppress_notices), so what a reader must be told of is m.text.

    `mentions` are (user id, label) pairs put in front and in m.mentions. `addressed` is
    (user id, label, text): a last paragraph for one person, who is mentioned — e.g. the
    practitioner under an answer written for the patient. `thread_root`: the question came
    from that thread, the answer goes there too.
    """
    body = plain
    formatted = to_html(plain)
    mentioned = [u for u, _ in mentions]
    if mentions:
        body = " ".join(label for _, label in mentions) + ": " + plain
        formatted = " ".join(mention_pill(u, label) for u, label in mentions) + ": " + formatted
    if addressed is not None:
        user_id, label, text = addressed
        body += f"\n\n{label}: {text}"
        formatted += f"<br><br>{mention_pill(user_id, label)}: {to_html(text)}"
        mentioned.append(user_id)
    content: dict[str, Any] = {
        "msgtype": "m.text" if notify else "m.notice",
        "body": body,
        "format": HTML_FORMAT,
        "formatted_body": formatted,
        "m.mentions": {"user_ids": mentioned},
    }
    if reply_to:
        content["m.relates_to"] = answer_relation(reply_to, thread_root)
    if extra:
        content.update(extra)
    return content


def renewal_meta(
    request_id: str, status: str, medication: str, rules: Sequence[str] = ()
) -> dict[str, Any]:
    """The contract's machine-readable part of every message about a request."""
    return {
        "carebot.renewal": {
            "id": request_id,
            "status": status,
            "medication": medication,
            "rules": list(rules),
        }
    }
