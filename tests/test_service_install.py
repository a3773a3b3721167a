"""install-service: units filled with this installation's paths, and valid for systemd."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cli import service as cli_service
from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.service import install as service_install
from proxy.service.install import TEMPLATE_FILES, TEMPLATES

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)
EXPECTED_EXECUTABLE = Path(sys.executable).parent / "gdpr-proxy"

REQUIRED = [
    "Type=notify",
    "NotifyAccess=main",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "SystemCallFilter=@system-service",
    "SystemCallArchitectures=native",
    "MemoryDenyWriteExecute=yes",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "RestrictNamespaces=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "CapabilityBoundingSet=",
    "UMask=0077",
]


def run_cli(argv: list[str], config: Config | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gdpr-proxy")
    cli_service.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args, config or Config()))


def directives(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(("#", "["))]


def verify(unit_text: str, directory: Path, *user: str) -> None:
    """systemd-analyze verify on the unit as it would be installed."""
    assert SYSTEMD_ANALYZE is not None
    directory.mkdir(parents=True, exist_ok=True)
    unit = directory / service_install.UNIT_NAME
    unit.write_text(unit_text)
    runtime = directory / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, *user, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime), "HOME": str(directory)},
    )
    assert result.returncode == 0, result.stderr
    # verify reports some problems as warnings only: none are acceptable here.
    problems = [line for line in result.stderr.splitlines() if service_install.UNIT_NAME in line]
    assert problems == []


@pytest.fixture
def user_config(tmp_path: Path) -> Path:
    path = tmp_path / "home" / ".config" / "gdpr-mail-proxy" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(f"data_dir: {tmp_path / 'data'}\n")
    return path


@pytest.mark.parametrize("scope", ["user", "system"])
def test_templates_have_the_required_settings(scope: str) -> None:
    text = (TEMPLATES / TEMPLATE_FILES[scope]).read_text()  # type: ignore[index]
    lines = directives(text)
    for setting in REQUIRED:
        assert setting in lines, f"{setting} missing from the {scope} unit"
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert ("ProtectHome=read-only" if scope == "user" else "ProtectHome=yes") in lines
    assert "@GDPR_PROXY@" in text and "@CONFIG@" in text


def test_system_template_uses_state_and_configuration_directories() -> None:
    text = (TEMPLATES / TEMPLATE_FILES["system"]).read_text()
    lines = directives(text)
    assert "DynamicUser=yes" in lines
    assert "StateDirectory=gdpr-mail-proxy" in lines
    assert "ConfigurationDirectory=gdpr-mail-proxy" in lines
    assert re.search(r"^#LoadCredential=\S+:\S+", text, re.M), "a commented LoadCredential= example"


def test_user_dry_run_prints_resolved_paths(
    user_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["install-service", "--user", "--config", str(user_config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"ExecStart={EXPECTED_EXECUTABLE} --config {user_config} serve" in out
    assert f"ReadWritePaths={tmp_path / 'data'}" in out
    assert "@" + "GDPR_PROXY@" not in out and "@DATA_DIRS@" not in out
    assert (
        out.splitlines()[0]
        == f"# {tmp_path / 'home/.config/systemd/user/gdpr-mail-proxy.service'} (not written: --dry-run)"
    )
    assert not (tmp_path / "home" / ".config" / "systemd").exists(), "--dry-run writes nothing"


@needs_systemd_analyze
def test_user_unit_passes_systemd_analyze_verify(user_config: Path, tmp_path: Path) -> None:
    plan = service_install.plan_unit("user", user_config)
    verify(plan.text, tmp_path / "verify", "--user")


@needs_systemd_analyze
def test_system_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    plan = service_install.plan_unit("system", None)
    assert f"ExecStart={EXPECTED_EXECUTABLE} --config %d/config.yaml serve" in plan.text
    assert "LoadCredential=config.yaml:/etc/gdpr-mail-proxy/config.yaml" in plan.text
    verify(plan.text, tmp_path / "verify")


def test_install_writes_unit_and_data_directory(
    user_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["install-service", "--config", str(user_config)]) == 0
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "gdpr-mail-proxy.service"
    out = capsys.readouterr().out
    assert f"wrote {unit}" in out
    assert "systemctl --user daemon-reload && systemctl --user enable --now gdpr-mail-proxy" in out
    assert f"ExecStart={EXPECTED_EXECUTABLE} " in unit.read_text()
    data = tmp_path / "data"
    assert data.is_dir() and data.stat().st_mode & 0o777 == 0o700, "ReadWritePaths= needs it to exist"


def test_global_config_is_used_for_the_user_unit(user_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Config(source=str(user_config))
    assert run_cli(["install-service", "--dry-run"], config) == 0
    assert f"--config {user_config} serve" in capsys.readouterr().out


def test_missing_config_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["install-service", "--dry-run", "--config", str(tmp_path / "nope.yaml")]) == 0
    assert "does not exist yet" in capsys.readouterr().err


def test_invalid_config_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen:\n  port: many\n")
    with pytest.raises(UserError, match="not valid"):
        run_cli(["install-service", "--dry-run", "--config", str(bad)])


def test_paths_systemd_would_split_are_refused(tmp_path: Path) -> None:
    spaced = tmp_path / "my config.yaml"
    spaced.write_text("")
    with pytest.raises(UserError, match="space"):
        service_install.plan_unit("user", spaced)


def test_system_install_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_install.os, "geteuid", lambda: 1000)
    plan = service_install.plan_unit("system", None)
    assert plan.next_command.startswith("sudo systemctl daemon-reload")
    with pytest.raises(UserError, match="sudo"):
        service_install.install(plan)


def test_system_unit_warns_about_a_program_under_home(tmp_path: Path) -> None:
    plan = service_install.plan_unit("system", None, executable=Path("/home/anna/venv/bin/gdpr-proxy"))
    assert any("ProtectHome" in w for w in plan.warnings)
