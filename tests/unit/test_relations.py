"""Reading what a user typed: reply fallbacks stripped, edits and thread messages told apart,
and the bot's answer placed in the thread it was asked in."""

from __future__ import annotations

from bot.care.commands import Command, parse
from bot.care.emergency import Lexicon
from bot.matrix.messages import notice
from bot.matrix.relations import (
    answer_relation,
    read_message,
    strip_html_reply_fallback,
    strip_reply_fallback,
)
from unit_helpers import REPO

BANNER_QUOTE = (
    "> <@carebot:clinic.example> ⚠️ Si c'est une urgence, appelez le 15 (SAMU) ou le 112.\n"
    "> Idées suicidaires : appelez le 3114.\n"
    "\n"
)


def _reply(body: str, formatted: str | None = None) -> dict:
    content = {"msgtype": "m.text", "body": body, "m.relates_to": {"m.in_reply_to": {"event_id": "$banner"}}}
    if formatted is not None:
        content |= {"format": "org.matrix.custom.html", "formatted_body": formatted}
    return content


def test_the_quoted_lines_and_their_blank_separator_are_stripped():
    assert strip_reply_fallback(BANNER_QUOTE + "!accepter R1 ok") == "!accepter R1 ok"
    assert strip_reply_fallback("> only a quote") == ""
    assert strip_reply_fallback("no quote\n> later quote") == "no quote\n> later quote"


def test_the_mx_reply_block_is_stripped_from_the_formatted_body():
    html = '<mx-reply><blockquote><a href="https://matrix.to/#/$x">In reply to</a> urgence 15</blockquote></mx-reply>merci'
    assert strip_html_reply_fallback(html) == "merci"
    assert strip_html_reply_fallback("<b>rien</b>") == "<b>rien</b>"


def test_a_command_typed_as_a_reply_is_a_command():
    incoming = read_message(_reply(BANNER_QUOTE + "!accepter R1 Ordonnance prête"))
    assert incoming.text == "!accepter R1 Ordonnance prête"
    assert incoming.reply_to == "$banner" and not incoming.is_edit
    parsed = parse(incoming.text)
    assert isinstance(parsed, Command) and parsed.name == "approve"


def test_a_reply_quoting_the_banner_does_not_trip_the_emergency_lexicon():
    lexicon = Lexicon.load(REPO / "policies")
    quoted = "> <@carebot:x> j'ai des idées suicidaires, douleur thoracique : appelez le 15\n\nmerci pour l'info"
    assert lexicon.matches(quoted)  # read as a whole, the quote would alarm
    assert not lexicon.matches(read_message(_reply(quoted)).text)
    # ...while an emergency the patient types below the quote still counts.
    assert lexicon.matches(read_message(_reply(quoted + ", j'ai une douleur thoracique")).text)


def test_quote_lines_are_kept_in_a_message_that_is_not_a_reply():
    content = {"msgtype": "m.text", "body": "> douleur thoracique\n\nc'est ce que j'ai"}
    assert read_message(content).text == content["body"]


def test_an_element_edit_is_an_edit_of_the_original_with_the_new_text():
    content = {
        "msgtype": "m.text",
        "body": "* !renouveler Levothyroxine 100 µg",
        "m.new_content": {"msgtype": "m.text", "body": "!renouveler Levothyroxine 100 µg"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$original"},
    }
    incoming = read_message(content)
    assert incoming.is_edit and incoming.edit_of == "$original"
    assert incoming.text == "!renouveler Levothyroxine 100 µg"


def test_a_crafted_edit_without_star_or_new_content_is_still_an_edit():
    content = {"msgtype": "m.text", "body": "!accepter R1", "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}
    incoming = read_message(content)
    assert incoming.is_edit and incoming.text == "!accepter R1"


def test_new_content_marks_an_edit_even_if_the_clear_relation_was_dropped():
    content = {"msgtype": "m.text", "body": "* !accepter R1", "m.new_content": {"body": "!accepter R1"}}
    assert read_message(content).is_edit


def test_a_thread_message_names_its_root_and_its_fallback_is_not_a_reply():
    content = {
        "msgtype": "m.text",
        "body": "!statut",
        "m.relates_to": {
            "rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
            "m.in_reply_to": {"event_id": "$latest-in-thread"},
        },
    }
    incoming = read_message(content)
    assert incoming.thread_root == "$root" and incoming.reply_to is None and incoming.text == "!statut"


def test_a_real_reply_inside_a_thread_has_its_fallback_stripped():
    content = {
        "msgtype": "m.text",
        "body": "> <@dr:x> question\n\n!statut",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": False,
                         "m.in_reply_to": {"event_id": "$q"}},
    }
    incoming = read_message(content)
    assert (incoming.thread_root, incoming.reply_to, incoming.text) == ("$root", "$q", "!statut")


def test_an_answer_to_a_thread_message_goes_to_the_thread_as_a_reply():
    assert answer_relation("$cmd", None) == {"m.in_reply_to": {"event_id": "$cmd"}}
    rel = notice("ok", reply_to="$cmd", thread_root="$root")["m.relates_to"]
    assert rel == {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": False,
                   "m.in_reply_to": {"event_id": "$cmd"}}


def test_odd_contents_do_not_break_the_reader():
    for content in ({}, {"body": None}, {"body": "x", "m.relates_to": "nonsense"},
                    {"body": "x", "m.relates_to": {"m.in_reply_to": "nonsense"}}):
        incoming = read_message(content)
        assert not incoming.is_edit and incoming.thread_root is None
