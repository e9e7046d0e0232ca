"""The installed matrix-nio still has the private API bot/matrix/nio_private.py relies on."""

import ast
from pathlib import Path

from nio import AsyncClient

from bot.matrix import nio_private

BOT = Path(__file__).resolve().parents[2] / "bot"


def test_installed_nio_has_every_private_call_the_adapter_uses():
    assert nio_private.missing() == []


def test_adapter_builds_paths_and_keeps_bookkeeping_per_client():
    assert nio_private.path(["createRoom"], {"access_token": "t"}) == "/_matrix/client/v3/createRoom?access_token=t"
    one, two = AsyncClient("https://hs.example", "@a:hs.example"), AsyncClient("https://hs.example", "@b:hs.example")
    asked = nio_private.per_client(one, "asked", dict)
    asked["@x:hs.example"] = 1.0
    assert nio_private.per_client(one, "asked", dict) is asked
    assert nio_private.per_client(two, "asked", dict) == {}


def test_no_module_but_the_adapter_touches_nio_private_api():
    offenders = []
    for path in BOT.rglob("*.py"):
        if path.name == "nio_private.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("_send", "_build_path", "__dict__"):
                offenders.append(f"{path.relative_to(BOT.parent)}:{node.lineno} .{node.attr}")
    assert offenders == []
