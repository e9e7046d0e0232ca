"""Hostile and malformed input through CareService.handle_message, and the Matrix rendering of replies.

Every message gets a clear reply or nothing, never an exception; user text echoed back is escaped
in the HTML body built by bot.matrix.messages.notice().
"""

from __future__ import annotations

import unicodedata

import pytest
from test_service import LEVO, ROOM, Env, env  # noqa: F401  (env is a fixture)

from bot.care.commands import parse
from bot.care.service import MAX_SHOWN_CHARS, Reply
from bot.matrix.messages import HTML_FORMAT, notice, renewal_meta, to_html

KIB64 = 64 * 1024
RLO, ZWSP, ZWJ, SHY, BOM = "\u202e", "\u200b", "\u200d", "\u00ad", "\ufeff"
INVISIBLE = (RLO, ZWSP, ZWJ, SHY, BOM, "\u2066", "\u2069")

# (role, body, expected): expected is a text key (fr), None for "no reply", or "renewal:<status>".
CORPUS: list[tuple[str, str, str | None]] = [
    ("patient", "a" * KIB64, None),
    ("practitioner", "a" * KIB64, None),
    ("patient", "!renouveler " + "a" * KIB64, "too_long"),
    ("practitioner", "!approve R1 " + "a" * KIB64, "too_long"),
    ("patient", "!foo" + "o" * KIB64, "too_long"),
    ("patient", "!renouveler", "usage"),
    ("patient", "!renouveler    ", "usage"),
    ("patient", "!renouveler \t \n  ", "usage"),
    ("patient", f"!renouveler {ZWSP}{RLO}{SHY}", "usage"),
    ("patient", "!foo", "unknown_command"),
    ("practitioner", "!foo bar", "unknown_command"),
    ("patient", "!RENEW levothyroxine 75ug", "renewal:pending"),
    ("patient", "!ReNoUvElEr LEVOTHYROXINE 75 MCG", "renewal:pending"),
    ("patient", f"!re{RLO}new Levo{ZWSP}thyroxine 75 {RLO}µg", "renewal:pending"),
    ("patient", f"{BOM}{ZWJ}  !renew Levothyroxine{SHY} 75 µg", "renewal:pending"),
    ("patient", f"!renew {RLO}enilhprom", "renewal:ineligible"),
    ("patient", "!renew 💊💊", "renewal:ineligible"),
    ("patient", "!renew 👨‍👩‍👧 🇫🇷", "renewal:ineligible"),
    ("patient", "!renew <script>alert(1)</script>", "renewal:ineligible"),
    ("patient", "!renew **bold** [x](http://evil)", "renewal:ineligible"),
    ("patient", "!renew levo\x07", "invalid_characters"),
    ("patient", "!renew\x00", "invalid_characters"),
    ("patient", "!re\x00new levothyroxine", "invalid_characters"),
    ("practitioner", "!approve R1 ok\x1b[31m", "invalid_characters"),
    ("patient", "bonjour\x00\x07\x1b[2J docteur", None),
    ("practitioner", "!approve R999999999999", "usage"),
    ("practitioner", "!approve Rabc", "usage"),
    ("practitioner", "!approve", "usage"),
    ("practitioner", "!deny Rabc pas possible", "usage"),
    ("patient", "!cancel", "usage"),
    ("patient", "!annuler R-1", "usage"),
    ("patient", "!cancel R0", "usage"),
    ("patient", "!cancel R5", "unknown_request"),
    ("practitioner", "!pending\n!approve R1", "pending_empty"),
    ("patient", "!statut\n!renouveler Levothyroxine 75 µg", "status_empty"),
    ("patient", "!", None),
    ("patient", "!!!", None),
    ("patient", "! renew x", None),
    ("patient", "!?", None),
    ("patient", "", None),
    ("patient", "   \n\t", None),
    ("patient", RLO + ZWSP, None),
    ("practitioner", "!RENEW x", "not_allowed_for_role"),
    ("patient", "!APPROVE R1", "not_allowed_for_role"),
]


@pytest.mark.parametrize(("role", "body", "expected"), CORPUS, ids=[f"{i}-{r}" for i, (r, _, _) in enumerate(CORPUS)])
async def test_corpus_gets_a_clear_reply_or_nothing(env: Env, role: str, body: str, expected: str | None) -> None:  # noqa: F811
    replies = await env.send(role, body)
    assert all(isinstance(r, Reply) for r in replies)
    if expected is None:
        assert replies == []
        return
    assert len(replies) == 1, replies
    r = replies[0]
    assert r.text.strip() and len(r.text) < 3000
    assert not r.emergency
    # The answer is in the language of the command word; unknown words get the roster's (fr).
    parsed = parse(body)
    loc = getattr(parsed, "locale", None) or "fr"
    if expected.startswith("renewal:"):
        status = expected.split(":")[1]
        assert r.renewal is not None and r.renewal[1] == status
        # A pending request takes the first R-number; a refused attempt takes none.
        assert r.renewal[0] == "R1" if status == "pending" else r.renewal[0].startswith("X-")
    else:
        assert r.renewal is None
        if expected == "usage":
            assert r.text.startswith(env.t("usage", loc, usage="!")[:-1])
        elif expected == "too_long":
            assert r.text == env.t("too_long", loc, max=env.care.max_chars)
        elif expected == "unknown_request":
            assert r.text == env.t("unknown_request", loc, id="R5")
        elif expected == "not_allowed_for_role":
            assert r.text.startswith(env.t("not_allowed_for_role", loc, command="X").split("X")[0])
        else:
            assert r.text == env.t(expected, loc)
    # Nothing invisible or control-like is ever echoed back.
    assert not any(ch in r.text for ch in INVISIBLE)
    assert not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in r.text)
    # And it renders as a Matrix notice.
    content = notice(r.text, reply_to="$x")
    assert content["msgtype"] == "m.notice" and content["body"] == r.text


async def test_usage_texts_name_the_command(env: Env) -> None:  # noqa: F811
    assert (await env.one("patient", "!renouveler")).text == env.t("usage", usage="!renouveler <médicament>")
    assert (await env.one("patient", "!annuler")).text == env.t("usage", usage="!annuler <id>")
    assert (await env.one("practitioner", "!accepter Rabc")).text == env.t("usage", usage="!accepter <id> [note]")
    # An English command word gets its usage in English, whatever the roster locale.
    assert (await env.one("patient", "!cancel")).text == env.t("usage", "en", usage="!cancel <id>")
    assert (await env.one("practitioner", "!approve R999999999999")).text == env.t("usage", "en", usage="!approve <id> [note]")


async def test_long_medication_is_shortened_when_echoed_and_stored(env: Env) -> None:  # noqa: F811
    med = "x" * (env.care.max_chars - 20)
    r = await env.one("patient", "!renew " + med)
    assert r.renewal is not None
    shown = r.renewal[2]
    assert len(shown) == MAX_SHOWN_CHARS and shown.endswith("…")
    assert shown in r.text and med not in r.text
    # Refused: nothing is stored, and no request number is used up.
    assert r.renewal[1] == "ineligible" and await env.store.request(1) is None


async def test_newline_separated_commands_run_only_the_first(env: Env) -> None:  # noqa: F811
    # The rest of the message (all lines) is the medication: it matches no treatment.
    r = await env.one("patient", f"!renouveler {LEVO}\n!annuler R1")
    assert r.renewal is not None
    assert r.renewal[1:] == ("ineligible", f"{LEVO} !annuler R1", ("long-term-treatment",))
    assert await env.store.request(1) is None
    # A practitioner cannot smuggle a second decision in a note: it is part of the note, on one line.
    r = await env.one("patient", f"!renouveler {LEVO}")
    assert r.renewal is not None and r.renewal[:2] == ("R1", "pending")
    r = await env.one("practitioner", "!accepter R1 ok\n!refuser R1 non")
    assert r.renewal == ("R1", "approved", LEVO, ())
    assert r.text == env.t("renewal_approved_note", id="R1", medication=LEVO, note="ok !refuser R1 non")
    req = await env.store.request(1)
    assert req is not None and req.status == "approved" and req.note == "ok\n!refuser R1 non"


@pytest.mark.parametrize("form", ["NFC", "NFD", "NFKC", "NFKD"])
async def test_composed_and_decomposed_accents_match_the_same_treatment(env: Env, form: str) -> None:  # noqa: F811
    body = unicodedata.normalize(form, "!renouveler Lévothyroxine 75 µg")
    r = await env.one("patient", body)
    assert r.renewal is not None and r.renewal[1] == "pending"
    assert r.renewal[2] == LEVO  # as understood: the roster's name
    # The other form is the same medication: the answer points to the pending request.
    other = unicodedata.normalize("NFD" if form.endswith("C") else "NFC", body)
    assert other != body
    r = await env.one("patient", other)
    assert r.renewal == ("R1", "pending", LEVO, ())
    assert r.text == env.t("renewal_already_pending", id="R1", medication=LEVO)


INJECTIONS = ["<script>alert(1)</script>", "**bold**", "[x](http://evil)", '<a href="http://evil">x</a>', "<img src=x onerror=alert(1)>"]


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_injection_in_medication_note_and_reason_is_escaped_in_html(env: Env, payload: str) -> None:  # noqa: F811
    texts = []
    r = await env.one("patient", f"!renew {payload}")
    assert r.renewal is not None and r.renewal[2] == payload
    texts.append(r.text)
    await env.send("patient", f"!renew {LEVO}")
    texts.append((await env.one("practitioner", f"!approve R1 {payload}")).text)
    await env.send("patient", "!renew levothyroxine")
    texts.append((await env.one("practitioner", f"!deny R2 {payload}")).text)
    for text in texts:
        assert payload in text  # the plain text says what was typed
        content = notice(text)
        html = content["formatted_body"]
        assert "<script" not in html and "<img" not in html and 'href="http://evil"' not in html
        assert "<a " not in html and "<strong>" not in html and "<b>" not in html
        if "<" in payload:
            assert "&lt;" in html
        assert content["body"] == text


# -- bot.matrix.messages ---------------------------------------------------------------------


def test_notice_plain() -> None:
    c = notice("Bonjour <b>\nligne 2")
    assert c == {
        "msgtype": "m.notice",
        "body": "Bonjour <b>\nligne 2",
        "format": HTML_FORMAT,
        "formatted_body": "Bonjour &lt;b&gt;<br>ligne 2",
        "m.mentions": {"user_ids": []},
    }


def test_notice_mentions_and_reply() -> None:
    c = notice("Nouvelle demande", reply_to="$event:x", mentions=[("@dr.martin:clinic.example", "Dr <Claire> Martin")])
    assert c["m.mentions"] == {"user_ids": ["@dr.martin:clinic.example"]}
    assert c["body"] == "Dr <Claire> Martin: Nouvelle demande"
    assert c["formatted_body"] == (
        '<a href="https://matrix.to/#/@dr.martin:clinic.example">Dr &lt;Claire&gt; Martin</a>: Nouvelle demande'
    )
    assert c["m.relates_to"] == {"m.in_reply_to": {"event_id": "$event:x"}}
    assert "m.relates_to" not in notice("x")


def test_notice_mention_id_is_escaped() -> None:
    c = notice("x", mentions=[('@a"><script>:evil', "A")])
    assert "<script>" not in c["formatted_body"] and "&quot;&gt;&lt;script&gt;" in c["formatted_body"]


def test_notice_lists_and_extra() -> None:
    plain = "Raisons :\n- un <1>\n- deux & trois\nFin"
    c = notice(plain, extra=renewal_meta("R1", "ineligible", "<x>", ["a", "b"]))
    assert c["formatted_body"] == "Raisons :<br><ul><li>un &lt;1&gt;</li><li>deux &amp; trois</li></ul>Fin"
    assert c["body"] == plain
    assert c["carebot.renewal"] == {"id": "R1", "status": "ineligible", "medication": "<x>", "rules": ["a", "b"]}
    assert to_html("- seul") == "<ul><li>seul</li></ul>"
    assert to_html("a\n\nb") == "a<br><br>b"


def test_notice_of_real_ineligible_reply_makes_a_list() -> None:
    html = to_html("La demande R1 (<x>) :\n- raison 1\n- raison 2\nVous pouvez écrire.")
    assert html.count("<li>") == 2 and "&lt;x&gt;" in html
