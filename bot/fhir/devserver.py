"""A throwaway FHIR R4 server on loopback, for the tests, `make run-fhir` and the benchmark.

It is Medplum's FhirRouter over its in-memory repository (npm `@medplum/fhir-router`), run by
node from `tests/fhir/server.mjs` (installed by `make fhir-server`, from its lockfile). Nothing
here is used in production: a clinic runs its own FHIR server.

`down()` closes the port while keeping the data (an outage: connections are refused);
`up()` opens the same port again.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

SERVER_DIR = Path(__file__).resolve().parents[2] / "tests" / "fhir"
SCRIPT = SERVER_DIR / "server.mjs"


class FhirServerSetupError(RuntimeError):
    """node or the server's npm packages are missing."""


def check_installed() -> str:
    node = shutil.which("node")
    if node is None:
        raise FhirServerSetupError("`node` is not on PATH: the test FHIR server needs Node.js >= 20")
    if not (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise FhirServerSetupError(f"{SERVER_DIR}/node_modules has no @medplum/fhir-router: run `make fhir-server` first")
    return node


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MedplumServer:
    def __init__(self, log_path: Path | None = None) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = log_path
        self.is_down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "MedplumServer":
        node = check_installed()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [node, "--experimental-websocket", str(SCRIPT), "0"],
            cwd=SERVER_DIR,
            stdout=subprocess.PIPE,
            stderr=out,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline().decode()  # "listening <port>" once the definitions are loaded
        if not line.startswith("listening ") or time.monotonic() > deadline:
            self.stop()
            raise FhirServerSetupError(f"the FHIR test server did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def _wait(self, accepting: bool, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while _accepts(self.port) != accepting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"FHIR server port {self.port} still {'closed' if accepting else 'open'}")
            time.sleep(0.02)

    def down(self) -> None:
        """Refuse connections from now on (the data stays)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR2)
        self._wait(False)
        self.is_down = True

    def up(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        self._wait(True)
        self.is_down = False

    def reset(self) -> None:
        """Empty the repository (between tests)."""
        urllib.request.urlopen(urllib.request.Request(self.url + "/$reset", method="POST"), timeout=10).close()

    def post(self, resource: dict) -> dict:
        """Create a resource directly on the server (test and demo data), return it with its id."""
        req = urllib.request.Request(
            f"{self.url}/{resource['resourceType']}",
            data=json.dumps(resource).encode(),
            headers={"content-type": "application/fhir+json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return dict(json.load(resp))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
