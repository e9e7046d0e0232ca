"""Several bot accounts on one PostgreSQL: each practitioner is served by exactly one bot."""

from __future__ import annotations

import asyncio

import pytest

from bot.db.claims import ClaimConflict, claim, claims
from bot.db.database import PostgresDatabase

WHERE = "config-b.yaml:4: bot.practitioners"


async def open_bot(url: str, schema: str) -> PostgresDatabase:
    return await PostgresDatabase.open(url, schema)


async def test_two_bots_claiming_the_same_practitioner_get_an_error_naming_both(pg_url):
    a = await open_bot(pg_url, "carebot_a")
    b = await open_bot(pg_url, "carebot_b")
    try:
        await claim(a, "@carebot-a:clinic.example", ["dr-1", "dr-2"], "config-a.yaml:4: bot.practitioners")
        with pytest.raises(ClaimConflict) as info:
            await claim(b, "@carebot-b:clinic.example", ["dr-2", "dr-3"], WHERE)
        message = str(info.value)
        assert message.startswith(WHERE)
        assert "@carebot-b:clinic.example" in message and "@carebot-a:clinic.example" in message
        assert "'dr-2'" in message and "dr-3" not in message
        assert "restart it" in message
        # The refused bot claimed nothing, not even its uncontested practitioner.
        assert await claims(a) == {"dr-1": "@carebot-a:clinic.example", "dr-2": "@carebot-a:clinic.example"}
    finally:
        await a.close()
        await b.close()


async def test_a_practitioner_moves_once_its_first_bot_releases_it_on_restart(pg_url):
    a = await open_bot(pg_url, "carebot_a")
    b = await open_bot(pg_url, "carebot_b")
    try:
        await claim(a, "@a:x", ["dr-1", "dr-2"], WHERE)
        await claim(a, "@a:x", ["dr-1", "dr-2"], WHERE)  # a restart with the same list is fine
        await claim(a, "@a:x", ["dr-1"], WHERE)  # dr-2 removed from a's list: released
        await claim(b, "@b:x", ["dr-2"], WHERE)
        assert await claims(b) == {"dr-1": "@a:x", "dr-2": "@b:x"}
    finally:
        await a.close()
        await b.close()


async def test_two_bots_starting_at_once_cannot_both_win(pg_url):
    bots = [await open_bot(pg_url, f"carebot_{i}") for i in range(4)]
    try:
        results = await asyncio.gather(
            *(claim(db, f"@bot{i}:x", ["dr-shared", f"dr-own-{i}"], WHERE) for i, db in enumerate(bots)),
            return_exceptions=True,
        )
        winners = [r for r in results if r is None]
        assert len(winners) == 1
        assert all(isinstance(r, ClaimConflict) for r in results if r is not None)
        owner = (await claims(bots[0]))["dr-shared"]
        assert owner == f"@bot{results.index(None)}:x"
    finally:
        for db in bots:
            await db.close()
