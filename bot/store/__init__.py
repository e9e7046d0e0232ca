"""The bot's own database: SQLite (aiosqlite, the default) or PostgreSQL (asyncpg) through
bot/db, one set of versioned migrations, one transaction per handled event.

What it stores (documented for the clinic in the README):
- `kv`: the sync token and small bookkeeping values.
- `processed_events`: ids of Matrix events already handled, so a redelivered event is ignored.
- `rooms`: which room belongs to which (patient id, practitioner id) pair — roster ids only.
- `requests`: renewal requests (roster ids, the medication as understood, status, rule ids, note
  or reason, timestamps). This is medical data: the SQLite file is 0600 under `storage.path`;
  on PostgreSQL, grant the bot's role alone access to its schema.
- `pending_banners`: the room's disclaimer, waiting for a member to join (audience
  `first_member`), or kept to be posted again when the patient joins after the practitioner
  (audience `patient`).
- `reinvites`: members who left or rejected the invite, to be invited again at the next
  reconciliation.
- `device_warnings`: devices the practitioner was already told are not cross-signed.
- `undecryptable`: messages the bot could not decrypt yet (room, the encrypted event as
  received, the deadline for its key), retried until the key comes or the deadline passes.
- `desks`, `space_children`: each practitioner's desk room and Space, and the Space's children.
- `absences`, `absence_notices`: a practitioner's return day and message; which patient was
  told about it on which day (once a day).
- `desk_digests`, `desk_reminders`, `desk_devices`: the last digest day per practitioner, the
  requests already reminded, the practitioner devices the desk already caught up.
- `outbox`: replies decided but not yet confirmed sent; each has a transaction id so that a
  resend after a crash is de-duplicated by the homeserver. Sent rows are deleted.
- `identity_pins`: per roster member (Matrix id), the first cross-signing master key seen,
  and a different one seen since (an identity reset) until the clinic admin accepts it.
- `owner_forwarded_sessions`: Megolm sessions (room, sender key, session id) a sending device
  handed back itself at the bot's request, trusted as first-hand.
- `audit`: append-only records of requests, decisions, rooms and reloads (ids only).
- `fhir_writes`, `fhir_tasks`, `fhir_state`: the clinic bridge's write queue, Task links and
  saved roster (schema v4, bot/store/fhir.py).
"""

from bot.store.identities import IdentityPin
from bot.store.records import OutboxItem, Request, RoomRecord, Undecryptable
from bot.store.schema import LATEST, MIGRATIONS, Migration, StoreError
from bot.store.desk import DeskRecord
from bot.store.store import Store

__all__ = [
    "DeskRecord",
    "IdentityPin",
    "LATEST",
    "MIGRATIONS",
    "Migration",
    "OutboxItem",
    "Request",
    "RoomRecord",
    "Store",
    "StoreError",
    "Undecryptable",
]
