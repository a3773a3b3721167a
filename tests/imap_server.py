"""A real IMAP server for the watcher tests: pymap's maildir backend in a subprocess.

The maildir backend keeps the mailbox on disk, so the server can be killed and started again
on the same port with the same messages and UIDVALIDITY, as a real server restart would.
Messages are put in with Python's imaplib, a second, independent IMAP client.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pysasl.hashing import BuiltinHash

from tests.ports import free_port

PYMAP = Path(sys.executable).with_name("pymap")
HOST = "127.0.0.1"




@dataclass
class ImapServer:
    base_dir: Path
    port: int = field(default_factory=free_port)
    user: str = "alice"
    password: str = "correct horse battery staple"
    cert: Path | None = None  # with a certificate the server offers STARTTLS with it
    key: Path | None = None
    # pymap's maildir accepts only keywords declared per folder (as some real servers do)
    keywords: tuple[str, ...] = ("$OptOut", "$Erasure", "$Bounce", "$Classified")
    host: str = HOST
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        home = self.base_dir / self.user
        for sub in ("cur", "new", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        (home / "dovecot-keywords").write_text("".join(f"{i} {k}\n" for i, k in enumerate(self.keywords)))
        (self.base_dir / "pymap-etc-passwd").write_text(f"{self.user}:::::{self.user}:\n")
        # Few hash rounds: logins in tests should not cost CPU time.
        hashed = BuiltinHash(rounds=1000).hash(self.password)
        (self.base_dir / "pymap-etc-shadow").write_text(f"{self.user}:{hashed}\n")

    # --- process --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        args = [str(PYMAP), "--host", self.host, "--port", str(self.port)]
        if self.cert and self.key:
            args += ["--cert", str(self.cert), "--key", str(self.key)]
        args += ["maildir", str(self.base_dir)]
        log = (self.base_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pymap exited with {self.proc.returncode}; see {self.base_dir}/server.log")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2) as sock:
                sock.settimeout(1.0)
                if sock.recv(100).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("pymap did not start accepting connections in time")

    def stop(self, kill: bool = False) -> None:
        """Stop the server; ``kill`` makes it a crash (SIGKILL): connections just drop."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    # --- a second client ------------------------------------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            imap.login(self.user, self.password)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(self, message: bytes, folder: str = "INBOX", when: float | None = None) -> int:
        """APPEND ``message``; return its UID (pymap answers with APPENDUID)."""
        with self.client() as imap:
            date = imaplib.Time2Internaldate(when if when is not None else time.time())
            typ, data = imap.append(_quoted(folder), None, date, message)
            assert typ == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert match, data
            return int(match.group(1))

    def create(self, folder: str) -> None:
        with self.client() as imap:
            typ, data = imap.create(_quoted(folder))
            assert typ == "OK", data

    def delete(self, folder: str) -> None:
        with self.client() as imap:
            typ, data = imap.delete(_quoted(folder))
            assert typ == "OK", data

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Flags of every message in ``folder``, by UID (read-only: EXAMINE)."""
        with self.client() as imap:
            typ, data = imap.select(_quoted(folder), readonly=True)
            assert typ == "OK", data
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
            result: dict[int, set[str]] = {}
            for line in data:
                if not isinstance(line, bytes):
                    continue
                uid = re.search(rb"UID (\d+)", line)
                flags = re.search(rb"FLAGS \(([^)]*)\)", line)
                if uid and flags:
                    result[int(uid.group(1))] = set(flags.group(1).decode().split())
            return result

    def uids(self, folder: str = "INBOX") -> list[int]:
        return sorted(self.flags(folder))


def _quoted(folder: str) -> str:
    # imaplib sends mailbox names as they are; a name with a space must be quoted.
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def running_server(base_dir: Path, **kwargs: object) -> Iterator[ImapServer]:
    server = ImapServer(base_dir, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_cert(directory: Path, host: str = HOST) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (also its own CA), made with the openssl tool."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
            "-addext", f"subjectAltName=IP:{host}",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "OPENSSL_CONF": os.devnull},
    )  # fmt: skip
    return cert, key


class TlsFront:
    """Implicit TLS (as on port 993) in front of the test server, which only offers STARTTLS:
    a TLS-terminating relay on its own ephemeral port."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.backend_port = backend_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server((HOST, 0))
        self.port = int(self.listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            front = self.context.wrap_socket(raw, server_side=True)
            back = socket.create_connection((HOST, self.backend_port))
        except OSError:
            raw.close()
            return
        self._sockets += [front, back]
        threading.Thread(target=_pump, args=(back, front), daemon=True).start()
        _pump(front, back)

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
