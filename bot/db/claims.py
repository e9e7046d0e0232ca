"""Several bot accounts on one PostgreSQL: each practitioner is served by exactly one bot.

Each bot keeps its own tables in its own schema (`carebot_<localpart>` by default) and, at
start, claims the practitioners it serves in the shared table `carebot_shared.claims`. A
practitioner already claimed by another bot stops the start with an error naming both bots and
saying what to change; practitioners this bot no longer serves are released, so moving a
practitioner is: remove it from one bot's `bot.practitioners`, restart that bot, add it to the
other's, restart it. The claim is taken under a transaction-wide advisory lock, so two bots
starting at the same moment cannot both win.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from bot.db.database import SHARED_SCHEMA, PostgresDatabase, StoreError
_LOCK_KEY = 0x6361726562  # "careb": one advisory lock for every claim change


@dataclass(frozen=True)
class Conflict:
    practitioner_id: str
    other_bot: str


class ClaimConflict(StoreError):
    def __init__(self, bot_user_id: str, conflicts: list[Conflict], where: str) -> None:
        self.bot_user_id = bot_user_id
        self.conflicts = conflicts
        listed = "; ".join(f"practitioner '{c.practitioner_id}' is already served by {c.other_bot}" for c in conflicts)
        super().__init__(
            f"{where}: this bot ({bot_user_id}) claims practitioners that another bot serves: {listed}. "
            "Each practitioner must be served by exactly one bot account: remove them from one "
            "bot's bot.practitioners (a bot without that key serves the whole roster), restart it "
            "to release them, then start the other."
        )


async def claim(db: PostgresDatabase, bot_user_id: str, practitioners: Collection[str], where: str) -> None:
    """Claim `practitioners` for `bot_user_id`, release the ones it no longer serves."""
    wanted = sorted(set(practitioners))
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {SHARED_SCHEMA}.claims ("
            "practitioner_id TEXT PRIMARY KEY, bot_user_id TEXT NOT NULL, claimed_at DOUBLE PRECISION NOT NULL)"
        )
        rows = await db.fetch(
            f"SELECT practitioner_id, bot_user_id FROM {SHARED_SCHEMA}.claims "
            "WHERE practitioner_id = ANY($1::text[]) AND bot_user_id != $2 ORDER BY practitioner_id",
            wanted, bot_user_id,
        )
        if rows:
            raise ClaimConflict(bot_user_id, [Conflict(r[0], r[1]) for r in rows], where)
        await db.execute(
            f"DELETE FROM {SHARED_SCHEMA}.claims WHERE bot_user_id = $1 AND NOT (practitioner_id = ANY($2::text[]))",
            bot_user_id, wanted,
        )
        await db.execute(
            f"INSERT INTO {SHARED_SCHEMA}.claims (practitioner_id, bot_user_id, claimed_at) "
            "SELECT unnest($1::text[]), $2, $3 ON CONFLICT (practitioner_id) DO NOTHING",
            wanted, bot_user_id, time.time(),
        )


async def claims(db: PostgresDatabase) -> dict[str, str]:
    """practitioner id -> bot user id, for every claim (operators' view)."""
    rows = await db.fetch(f"SELECT practitioner_id, bot_user_id FROM {SHARED_SCHEMA}.claims ORDER BY practitioner_id")
    return {str(r[0]): str(r[1]) for r in rows}

