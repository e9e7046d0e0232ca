"""The desk room at run time: the practitioner's commands there, their arrival (welcome and the
pending list, readable on the devices they have then), intruders removed; and the desk's half
of pair-room traffic (new requests, emergencies, absences, ids that live in another room).

One reader per message: what the patient reads stays in the pair room, what is meant for the
practitioner goes to their desk.
"""

from __future__ import annotations

from typing import Any

import structlog
from nio import AsyncClient, MegolmEvent, RoomGetStateEventResponse, RoomMemberEvent, RoomMessageText

from bot.care import commands as cmd
from bot.care.renewals import Status, parse_id
from bot.care.roster import Pair, Practitioner
from bot.care.service import Reply
from bot.desk.clock import DeskClock
from bot.desk.content import desk_content
from bot.desk.links import permalink
from bot.desk.service import DeskPost, DeskService, is_elsewhere
from bot.matrix.messages import notice, renewal_meta
from bot.matrix.relations import read_message
from bot.runtime.shared import BACKGROUND, TO, LiveState, Wake, txn_for
from bot.runtime.trust_gate import TrustGate
from bot.runtime.undecryptable import UndecryptableMessages
from bot.store import Store

log = structlog.get_logger("carebot")


def pair_content(reply: Reply, pair: Pair, reply_to: str | None, thread_root: str | None = None) -> dict[str, Any]:
    """A pair-room answer holding the patient's half only; the practitioner stays mentioned
    (their client highlights it) when there was a half for them, which went to the desk."""
    extra: dict[str, Any] = {}
    if reply.renewal is not None:
        extra.update(renewal_meta(*reply.renewal))
    if reply.emergency:
        extra["carebot.emergency"] = True
    if reply.disclaimer:
        extra["carebot.disclaimer"] = True
    content = notice(reply.text, reply_to=reply_to, thread_root=thread_root, extra=extra, notify=reply.notify)
    if reply.for_practitioner is not None:
        content["m.mentions"] = {"user_ids": [pair.practitioner.matrix_id]}
    content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
    return content


class Desks:
    """Queueing desk posts: to the practitioner's desk room, encrypted for them only."""

    def __init__(self, store: Store, state: LiveState, service: DeskService, clock: DeskClock, wake: Wake) -> None:
        self.store = store
        self.state = state
        self.service = service
        self.clock = clock
        self.wake = wake

    async def room_of(self, practitioner_id: str) -> str | None:
        record = await self.store.desk(practitioner_id)
        return record.desk_room_id if record is not None else None

    async def post(
        self, practitioner: Practitioner, post: DeskPost, txn: str, *, mention: bool = False, room_id: str | None = None,
        background: bool = False,
    ) -> bool:
        """Queue one post (inside the caller's transaction); False when there is no desk yet.
        `background`: the outbox sends the patients' waiting replies first (a new request's
        notice; never an emergency)."""
        room_id = room_id or await self.room_of(practitioner.id)
        if room_id is None:
            return False
        content = desk_content(post, practitioner, mention=mention)
        content[TO] = [practitioner.matrix_id]
        if background:
            content[BACKGROUND] = True
        await self.store.enqueue(txn, room_id, content)
        return True


    async def notify(self, practitioner: Practitioner, text: str, txn: str) -> bool:
        """For PractitionerNotices: a notice for the practitioner alone, in their desk."""
        return await self.post(practitioner, DeskPost(text), txn, mention=True)


class DeskRoom:
    """Events of desk rooms (the router hands over rooms that are not pair rooms)."""

    def __init__(self, client: AsyncClient, desks: Desks) -> None:
        self._client = client
        self._desks = desks
        self._gate: TrustGate | None = None
        self._undecryptable: UndecryptableMessages | None = None
        self._bridge: Any = None

    def attach(self, gate: TrustGate, undecryptable: UndecryptableMessages | None = None, bridge: Any = None) -> None:
        """Decisions typed in the desk pass the same trust gate as in pair rooms, a message the
        bot cannot decrypt is handled the same way too, and with the clinic bridge (FHIR) a
        decision is mirrored as it is from a pair room."""
        self._gate = gate
        self._undecryptable = undecryptable
        self._bridge = bridge

    async def handle(self, room_id: str, event: Any) -> bool:
        d = self._desks
        record = await d.store.desk_by_room(room_id)
        if record is None:
            space = await d.store.desk_by_space(room_id)
            if space is not None and isinstance(event, RoomMemberEvent):
                await self._space_member(room_id, space.practitioner_id, event)
            return space is not None
        practitioner = d.state.care.roster.practitioner(record.practitioner_id)
        if practitioner is None:
            return True
        if isinstance(event, RoomMemberEvent):
            await self._member(room_id, practitioner, event)
        elif isinstance(event, RoomMessageText) and event.sender == practitioner.matrix_id:
            await self._message(room_id, practitioner, event)
        elif isinstance(event, MegolmEvent) and event.sender == practitioner.matrix_id and self._undecryptable is not None:
            await self._undecryptable.hold(room_id, event)  # key asked for, retried, told if it never comes
        return True

    async def _space_member(self, room_id: str, practitioner_id: str, event: RoomMemberEvent) -> None:
        """The Space: a practitioner who leaves it is invited again at the next reconciliation."""
        practitioner = self._desks.state.care.roster.practitioner(practitioner_id)
        if practitioner is not None and event.state_key == practitioner.matrix_id and event.membership == "leave":
            await self._space_left(room_id, practitioner)

    async def _space_left(self, room_id: str, practitioner: Practitioner) -> None:
        async with self._desks.store.transaction():
            await self._desks.store.need_reinvite(room_id, practitioner.matrix_id)

    async def space_gap(self, room_id: str) -> bool:
        """A Space whose sync timeline has a gap (e.g. hundreds of children just added): nothing
        in a Space is for the bot but the practitioner's membership, so instead of paging the
        gap back, read that membership from the server. False: not a Space, page it back.
        A failed read fails the batch, which is retried from the same token."""
        space = await self._desks.store.desk_by_space(room_id)
        if space is None:
            return False
        practitioner = self._desks.state.care.roster.practitioner(space.practitioner_id)
        if practitioner is None:
            return True
        resp = await self._client.room_get_state_event(room_id, "m.room.member", practitioner.matrix_id)
        if isinstance(resp, RoomGetStateEventResponse):
            if resp.content.get("membership") == "leave":
                await self._space_left(room_id, practitioner)
            return True
        if getattr(resp, "status_code", None) == "M_NOT_FOUND":
            return True  # never invited yet: the reconciliation invites
        raise RuntimeError(f"could not read the Space membership ({getattr(resp, 'status_code', '')})")

    async def _member(self, room_id: str, practitioner: Practitioner, event: RoomMemberEvent) -> None:
        d, member = self._desks, event.state_key
        if member == self._client.user_id:
            return
        if member != practitioner.matrix_id:
            if event.membership in ("join", "invite"):
                await self._client.room_kick(room_id, member, reason="carebot: private desk")
                log.warning("desk.intruder_removed", room_id=room_id)
            return
        if event.membership == "leave":
            async with d.store.transaction():
                await d.store.need_reinvite(room_id, member)
            return
        if event.membership != "join":
            return
        # Their arrival: the pending list, readable on every device they have now.
        care = d.state.care
        t = d.service.text(care, practitioner)
        listing = await d.service.listing(care, practitioner, d.clock.now())
        async with d.store.transaction():
            if await d.store.is_processed(event.event_id):
                return
            await d.post(practitioner, DeskPost(t.get("desk_welcome") + "\n\n" + listing), txn_for(event.event_id, "welcome"), room_id=room_id)
            await d.store.mark_processed(event.event_id, room_id)
        d.wake()

    async def _message(self, room_id: str, practitioner: Practitioner, event: RoomMessageText) -> None:
        d = self._desks
        incoming = read_message(event.source.get("content", {}))  # a reply to a notice: what they typed
        if incoming.is_edit:
            return  # an edited command changes nothing: decisions are final
        if await self._refused(room_id, practitioner, event, incoming.text):
            return
        async with d.store.transaction():
            if await d.store.is_processed(event.event_id):
                return
            outcome = await d.service.handle(d.state.care, practitioner, incoming.text, event.event_id, d.clock.now())
            for n, post in enumerate(outcome.desk):
                content = desk_content(post, practitioner)
                content["m.relates_to"] = {"m.in_reply_to": {"event_id": event.event_id}}
                content[TO] = [practitioner.matrix_id]
                await d.store.enqueue(txn_for(event.event_id, "desk", str(n)), room_id, content)
            for answer in outcome.pair:
                for n, reply in enumerate(answer.replies):
                    await d.store.enqueue(txn_for(event.event_id, answer.room_id, str(n)), answer.room_id, pair_content(reply, answer.pair, answer.reply_to))
                if self._bridge is not None:  # the Task write commits with the decision
                    await self._bridge.queue(answer.pair, list(answer.replies))
            await d.store.mark_processed(event.event_id, room_id)
        log.info("desk.command", room_id=room_id, decisions=len(outcome.pair))
        d.wake()
        if self._bridge is not None and outcome.pair:
            self._bridge.wake()


    async def _refused(self, room_id: str, practitioner: Practitioner, event: RoomMessageText, text: str) -> bool:
        """A decision or an absence from a device the gate does not trust changes nothing (told in the desk)."""
        if self._gate is None:
            return False
        d = self._desks
        parsed = cmd.parse(text, max_length=d.state.care.max_chars)
        if isinstance(parsed, cmd.Command) and parsed.name in ("away", "back"):  # what patients are told changes
            return await self._gate.refused_in_desk(room_id, practitioner, event, text)
        if not isinstance(parsed, cmd.Command) or parsed.name not in ("approve", "deny") or parsed.request_id is None:
            return False
        request = await d.store.request(parsed.request_id)
        if request is None or request.practitioner_id != practitioner.id:
            return False  # unknown to them: nothing would change
        pair = d.state.care.roster.pair(request.patient_id, practitioner.id)
        return pair is not None and await self._gate.refused(room_id, pair, "practitioner", event, text)


class DeskRelay:
    """The desk's part in a pair-room message (called by Conversation inside its transaction)."""

    def __init__(self, desks: Desks) -> None:
        self._desks = desks

    async def before(self, pair: Pair, role: str, body: str, room_id: str) -> list[Reply] | None:
        """A practitioner's !approve/!deny about a request of another of their rooms: say where."""
        if role != "practitioner":
            return None
        care = self._desks.state.care
        parsed = cmd.parse(body, max_length=care.max_chars)
        if not isinstance(parsed, cmd.Command):
            return None
        locale = care.locale_of(pair, pair.practitioner.matrix_id)
        if parsed.name in ("help", "away", "back"):
            # Their help lists decision commands the patient must not read: it is in the desk.
            desk_id = await self._desks.room_of(pair.practitioner.id)
            if desk_id is None:
                return None
            if parsed.name == "help":
                return [Reply(care.texts.get("desk_pair_help", locale, link=permalink(desk_id, via=self._desks.service.via)))]
            command = "!" + cmd.spec(parsed.name).display_name(locale)
            return [Reply(care.texts.get("desk_only_here", locale, command=command, link=permalink(desk_id, via=self._desks.service.via)))]
        if parsed.request_id is None:
            return None
        request = await self._desks.store.request(parsed.request_id)
        if not is_elsewhere(parsed, role, request, pair, room_id):
            return None
        return [self._desks.service.elsewhere(care, pair, request, locale)]

    async def after(self, pair: Pair, role: str, replies: list[Reply], event_id: str, room_id: str) -> tuple[list[Reply], bool]:
        """Post the practitioner's halves in the desk: (the replies the pair room keeps, whether
        their practitioner halves went to the desk)."""
        d = self._desks
        care = d.state.care
        if await d.room_of(pair.practitioner.id) is None:
            return replies, False  # no desk (disabled, or not created yet): everything stays here
        kept: list[Reply] = []
        for n, reply in enumerate(replies):
            if reply.for_practitioner is not None:
                post = await self._for_desk(pair, reply, event_id, room_id)
                if post is not None:  # after the patient's answer when a burst queues many
                    await d.post(pair.practitioner, post, txn_for(event_id, "desk", str(n)), mention=True, background=not reply.emergency)
            kept.append(reply)
        if role == "patient":
            notice_ = await d.service.absence_reply(care, pair, d.clock.now())
            if notice_ is not None:
                kept.append(notice_)
        d.wake()
        return kept, True

    async def _for_desk(self, pair: Pair, reply: Reply, event_id: str, room_id: str) -> DeskPost | None:
        d = self._desks
        care = d.state.care
        if reply.emergency:
            return d.service.emergency(care, pair, room_id, event_id)
        if reply.renewal is not None and reply.renewal[1] == Status.PENDING.value:
            number = parse_id(reply.renewal[0])
            request = await d.store.request(number) if number is not None else None
            if request is not None:
                return await d.service.new_request(care, pair, request)
        return DeskPost(reply.for_practitioner or "")  # any other half meant for the practitioner
