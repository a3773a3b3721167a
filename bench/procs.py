"""Processes under test: starting, waiting for the 220 greeting, memory and CPU from /proc."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
POSTFIX_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in POSTFIX_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return None


def ensure_postfix_tools(allow_install: bool = True) -> tuple[str, str]:
    """Paths of smtp-source and smtp-sink; installs Debian's postfix only as root outside CI."""
    source, sink = find_tool("smtp-source"), find_tool("smtp-sink")
    if source and sink:
        return source, sink
    can_install = allow_install and os.geteuid() == 0 and not os.environ.get("CI") and shutil.which("apt-get")
    if can_install:
        print("smtp-source/smtp-sink not found: installing Debian's postfix package (the daemon is not used)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], env=env, check=False)
        source, sink = find_tool("smtp-source"), find_tool("smtp-sink")
        if source and sink:
            return source, sink
    sys.exit(
        "bench: smtp-source and smtp-sink (Postfix's test tools) are needed.\n"
        "  Debian/Ubuntu: sudo apt-get install postfix   (choose 'No configuration'; the daemon need not run)\n"
        "  Fedora: sudo dnf install postfix    macOS (Homebrew): not packaged; use a Linux machine"
    )


def ensure_dovecot(allow_install: bool = True) -> str | None:
    """Path of dovecot for the reply-watcher section; installs Debian's dovecot-imapd only as
    root outside CI (its system service is not started or used).  None when absent."""
    from .dovecot import find_dovecot

    found = find_dovecot()
    if found:
        return found
    if allow_install and os.geteuid() == 0 and not os.environ.get("CI") and shutil.which("apt-get"):
        print("dovecot not found: installing Debian's dovecot-imapd for the reply-watcher section (run privately)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "dovecot-imapd"], env=env, check=False, capture_output=True)
        found = find_dovecot()
    return found


def machine_load() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    parts = Path("/proc/loadavg").read_text().split()
    return float(parts[0]), float(parts[1]), float(parts[2])


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / TICKS, total / TICKS


def wait_for_greeting(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds until 127.0.0.1:port answers with a 220 line; raises on timeout or exit."""
    start = time.perf_counter()
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(512)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return time.perf_counter() - start
        except OSError:
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"nothing answered 220 on port {port} within {timeout:.0f} s")
        time.sleep(0.005)


class Proc:
    """A server process under test."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path, cwd: Path | None = None):
        self.name = name
        self.port = port
        self.log = log
        self.started = time.perf_counter()
        with log.open("ab") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        self.ready_seconds = float("nan")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout: float = 30.0) -> float:
        try:
            wait_for_greeting(self.port, timeout, self.popen)
        except RuntimeError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name}: {exc}\n--- {self.log} ---\n{tail}") from None
        self.ready_seconds = time.perf_counter() - self.started
        return self.ready_seconds

    def _status(self, key: str) -> int:
        """A kB figure from /proc/PID/status (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def rss_mb(self) -> float:
        return self._status("VmRSS") / 1024

    def peak_mb(self) -> float:
        return self._status("VmHWM") / 1024

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def python_server(name: str, module_args: list[str], port: int, workdir: Path, repo: Path) -> Proc:
    return Proc(name, [sys.executable, "-m", *module_args], port, workdir / f"{name}.log", cwd=repo)


def smtp_sink(sink_path: str, port: int, workdir: Path) -> Proc:
    argv = [sink_path]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without a user to switch to
    argv += ["-m", "512", f"127.0.0.1:{port}", "1024"]
    return Proc("smtp-sink", argv, port, workdir / "smtp-sink.log")


def machine_description() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    uname = os.uname()
    return f"{usable} CPU(s) usable (nproc), {os.cpu_count()} online; {model}; {uname.sysname} {uname.release}; " + (
        f"Python {sys.version.split()[0]}"
    )
