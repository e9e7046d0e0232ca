"""A throwaway PostgreSQL cluster on loopback, for tests and the benchmark (like devserver.py).

It uses the server programs of the machine's PostgreSQL (Debian's `postgresql` package:
`initdb`, `pg_ctl`, `postgres`), in a temporary directory, on a free port, with `trust`
authentication on 127.0.0.1 only. PostgreSQL refuses to run as root, so when we are root (CI
is) the cluster's files belong to, and the server runs as, an unprivileged account (`postgres`
when the package created it, else `nobody`). Nothing here is used in production.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.devserver import free_port

SUPERUSER = "carebot"
INSTALL_HINT = (
    "PostgreSQL's server programs (initdb, pg_ctl) were not found. `make test` installs them "
    "(Debian: apt-get install postgresql)."
)


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    """The directory of `initdb`/`pg_ctl`: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise PostgresUnavailable(INSTALL_HINT)
    return Path(candidates[-1]).parent


def _run_as() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


@dataclass
class PostgresServer:
    """One PostgreSQL cluster. `durable=False` (tests) turns fsync off for speed."""

    durable: bool = False
    port: int = 0
    dir: Path | None = None
    _account: pwd.struct_passwd | None = field(default=None, repr=False)
    _bindir: Path | None = field(default=None, repr=False)
    _counter: int = 0

    @property
    def data_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None and self.dir is not None
        program, *rest = args
        kwargs: dict[str, object] = {}
        if self._account is not None:
            kwargs = {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.dir)}
        proc = subprocess.run(
            [str(self._bindir / program), *rest], cwd=self.dir, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, **kwargs,  # type: ignore[arg-type]
        )
        if check and proc.returncode != 0:
            raise PostgresUnavailable(f"{program} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
        return proc

    def start(self) -> "PostgresServer":
        self._bindir = find_bindir()
        self._account = _run_as()
        # Not under pytest's tmp dir: its parents are 0700 root, unreachable for the server's account.
        self.dir = Path(tempfile.mkdtemp(prefix="carebot-pg-"))
        os.chmod(self.dir, 0o700)
        if self._account is not None:
            os.chown(self.dir, self._account.pw_uid, self._account.pw_gid)
        self._cmd("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-sync")
        self.port = self.port or free_port()
        options = [
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.dir}",
            "-c max_connections=200", "-c shared_buffers=64MB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._cmd("pg_ctl", "-D", str(self.data_dir), "-l", str(self.dir / "server.log"),
                  "-o", " ".join(options), "-w", "-t", "60", "start")
        return self

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        if name is None:
            self._counter += 1
            name = f"t{os.getpid()}_{self._counter}"
        self._cmd("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def log_tail(self, lines: int = 40) -> str:
        assert self.dir is not None
        try:
            return "\n".join((self.dir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.dir is None:
            return
        if self.data_dir.exists():
            self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
