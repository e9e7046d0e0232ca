"""Desk posts as Matrix m.notice contents: the link made clickable, the request's metadata
(`carebot.renewal`, `carebot.patient`) in the encrypted content. An alert (a possible
emergency) is an m.text mentioning the practitioner: the only kind their client rings for."""

from __future__ import annotations

import html
from typing import Any

from bot.care.renewals import format_id
from bot.care.roster import Practitioner
from bot.desk.service import DeskPost
from bot.matrix.messages import notice, renewal_meta

PATIENT_KEY = "carebot.patient"


def desk_content(post: DeskPost, practitioner: Practitioner, *, mention: bool = False) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    r = post.request
    if r is not None:
        extra.update(renewal_meta(format_id(r.id), post.status or r.status, r.medication, tuple(r.rules)))
        extra[PATIENT_KEY] = {"id": r.patient_id}
    content = notice(post.text, extra=extra)
    if mention or post.alert:  # highlighted in their client, without their own name in front of the text
        content["m.mentions"] = {"user_ids": [practitioner.matrix_id]}
    if post.alert:  # a notice never notifies (.m.rule.suppress_notices): an alert must ring
        content["msgtype"] = "m.text"
    if post.link:
        escaped = html.escape(post.link)
        content["formatted_body"] = content["formatted_body"].replace(escaped, f'<a href="{escaped}">{escaped}</a>')
    return content
