"""A real PostgreSQL server for the tests: one per test session, a fresh database per test.

It runs Debian's postgresql package (or any ``initdb`` on PATH, or in $PG_BIN) from a
temporary directory: loopback only, an ephemeral port, its socket in that directory, and
trust authentication (nothing but this machine's tests can reach it).  PostgreSQL refuses
to run as root, so as root the server runs as the ``postgres`` system user.

Without the binaries the PostgreSQL tests are skipped, except as root (CI and this
project's own machines install the package): there a missing server is a failure.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port as _free_port

SERVER_USER = "postgres"


def _bin_dir() -> Path | None:
    explicit = os.environ.get("PG_BIN")
    if explicit and (Path(explicit) / "initdb").exists():
        return Path(explicit)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    as_user: str | None  # run the server's programs as this user (when we are root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sockets"

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120, cwd=self.root)

    @classmethod
    def start(cls, bin_dir: Path) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="gdpr-proxy-pg-"))
        (root / "sockets").mkdir()
        as_user = None
        if os.geteuid() == 0:
            as_user = SERVER_USER
            entry = pwd.getpwnam(SERVER_USER)
            for path in (root, root / "sockets"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        server = cls(bin_dir, root, 0, as_user)
        server._run("initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        last_error = ""
        for _ in range(5):  # the free port may be taken between choosing and binding it
            server.port = _free_port()
            options = (
                f"-p {server.port} -k {server.sockets} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            done = server._run(
                "pg_ctl",
                "-D",
                str(server.data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "start",
                check=False,
            )
            if done.returncode == 0:
                return server
            last_error = done.stdout + done.stderr + _tail(root / "server.log")
        server.remove()
        raise RuntimeError(f"PostgreSQL did not start:\n{last_error}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> str:
        done = self._run(
            "psql",
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.sockets),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            statement,
        )
        return done.stdout

    def create_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        self.sql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


_server: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """The session's server, started on first use (test modules share it)."""
    global _server
    if _server is None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            if os.geteuid() == 0:
                pytest.fail("PostgreSQL is not installed: apt-get install postgresql (needed for the store tests)")
            pytest.skip("PostgreSQL is not installed (no initdb): the PostgreSQL store tests are skipped")
        _server = PostgresServer.start(bin_dir)
        atexit.register(stop_shared_server)  # also when the session ends abnormally
    return _server


def stop_shared_server() -> None:
    global _server
    if _server is not None:
        server, _server = _server, None
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield shared_server()
    stop_shared_server()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of the session's server, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
