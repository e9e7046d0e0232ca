"""Private files in the storage directory: atomic 0600 writes and the recovery key file."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from bot.matrix.crypto.errors import RecoveryKeyError

__all__ = [
    "RECOVERY_KEY_FILE",
    "private_dir",
    "read_recovery_key_file",
    "write_private",
    "write_recovery_key",
]

RECOVERY_KEY_FILE = "recovery-key.txt"


def write_private(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path`` with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def private_dir(path: Path) -> bool:
    """Make ``path`` a directory only its owner can enter (0700); True if it had to be
    tightened (an existing directory created with a looser mode)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = path.stat().st_mode & 0o777
    if mode == 0o700:
        return False
    os.chmod(path, 0o700)
    return True


def write_recovery_key(storage_dir: Path, recovery_key: str, user_id: str) -> Path:
    """Write ``recovery-key.txt`` (0600), keeping any previous one as ``.replaced-<time>``."""
    path = storage_dir / RECOVERY_KEY_FILE
    if path.exists():
        # Never lose a key silently: keep the previous one beside the new one.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path.rename(path.with_name(f"{RECOVERY_KEY_FILE}.replaced-{stamp}"))
    write_private(
        path,
        f"# Matrix recovery key for {user_id}: restores the bot's cross-signing identity.\n"
        "# Move it to offline storage; anyone holding it can impersonate the bot's devices.\n"
        f"{recovery_key}\n",
    )
    return path


def read_recovery_key_file(path: Path | str) -> str:
    """The recovery key in a file: the first line that is not empty or a # comment."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    raise RecoveryKeyError(f"no recovery key found in {path}")
