"""`gdpr-proxy install-service`: a systemd unit with the paths of this installation.

The units in systemd/ are templates; this fills in where the `gdpr-proxy` program, the
config and (for the user service) the data directory are, and writes the result where
systemd looks for it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Literal

from proxy.config.settings import APP, Config, ConfigError, default_config_path, load_config
from proxy.errors import UserError

Scope = Literal["user", "system"]

UNIT_NAME = f"{APP}.service"
TEMPLATES = Path(str(files("proxy.service") / "systemd"))  # package data; `systemd/` in a checkout
TEMPLATE_FILES: dict[Scope, str] = {"user": UNIT_NAME, "system": f"{APP}-system.service"}
SYSTEM_CONFIG = Path("/etc") / APP / "config.yaml"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
# ProtectHome=yes hides these from the system service.
HIDDEN_FROM_SYSTEM = (Path("/home"), Path("/root"), Path("/run/user"))


@dataclass
class UnitPlan:
    scope: Scope
    path: Path  # where the unit is written
    text: str
    config: Path
    executable: Path
    writable: list[Path] = field(default_factory=list)  # directories the service writes to
    warnings: list[str] = field(default_factory=list)

    @property
    def next_command(self) -> str:
        if self.scope == "user":
            return f"systemctl --user daemon-reload && systemctl --user enable --now {APP}"
        sudo = "" if os.geteuid() == 0 else "sudo "
        return f"{sudo}systemctl daemon-reload && {sudo}systemctl enable --now {APP}"


def find_executable() -> Path:
    """The `gdpr-proxy` program of this installation: next to sys.executable, else on PATH."""
    beside = Path(sys.executable).parent / "gdpr-proxy"
    if beside.is_file() and os.access(beside, os.X_OK):
        # Not resolved: a venv's bin/ holds a symlink to the interpreter, and the script's
        # shebang names the venv, which is what makes the installed packages importable.
        return beside.absolute()
    found = shutil.which("gdpr-proxy")
    if found:
        return Path(found).absolute()
    raise UserError("cannot find the gdpr-proxy program; install the package (pip install .) first")


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "systemd" / "user"


def _check_unit_value(label: str, path: Path) -> None:
    # systemd splits ExecStart= on whitespace and expands % and $; such paths would need quoting
    # rules that differ between directives, so refuse them plainly.
    if any(c in str(path) for c in " \t\n\"'\\%$"):
        raise UserError(f"{label} {path} contains a space or a character systemd treats specially; move it")


def render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def _load(config_path: Path) -> Config | None:
    if not config_path.exists():
        return None
    try:
        return load_config(config_path, explicit=True)
    except ConfigError as exc:
        raise UserError(f"{config_path} is not valid, fix it first:\n{exc}") from None


def plan_unit(scope: Scope, config_path: Path | None, executable: Path | None = None) -> UnitPlan:
    """Everything install-service would write, without touching the file system."""
    executable = executable or find_executable()
    if config_path is None:
        config_path = SYSTEM_CONFIG if scope == "system" else default_config_path()
    config_path = config_path.expanduser().absolute()
    _check_unit_value("the program path", executable)
    _check_unit_value("the config path", config_path)
    warnings: list[str] = []
    config = _load(config_path)
    if config is None:
        warnings.append(f"{config_path} does not exist yet: create it before starting the service")
        config = Config()
    template = (TEMPLATES / TEMPLATE_FILES[scope]).read_text(encoding="utf-8")
    values = {"GDPR_PROXY": str(executable), "CONFIG": str(config_path)}
    writable: list[Path] = []
    if scope == "user":
        writable = _user_writable(config)
        for directory in writable:
            _check_unit_value("the data directory", directory)
        values["DATA_DIRS"] = " ".join(str(p) for p in writable)
        unit_path = user_unit_dir() / UNIT_NAME
    else:
        warnings.extend(_system_warnings(config, executable))
        unit_path = SYSTEM_UNIT_DIR / UNIT_NAME
    return UnitPlan(scope, unit_path, render(template, values), config_path, executable, writable, warnings)


def _user_writable(config: Config) -> list[Path]:
    """The directories the user service writes to; everything else in $HOME is read-only."""
    wanted = [config.data_path, *([] if config.uses_postgresql else [config.store_path.parent]), config.capture_path]
    result: list[Path] = []
    for path in (p.expanduser().absolute() for p in wanted):
        if not any(path == kept or path.is_relative_to(kept) for kept in result):
            result = [kept for kept in result if not kept.is_relative_to(path)] + [path]
    return result


def _system_warnings(config: Config, executable: Path) -> list[str]:
    warnings = []
    package = Path(__file__).resolve().parent
    for what, path in (("the program", executable), ("the installed package", package)):
        if any(path.is_relative_to(hidden) for hidden in HIDDEN_FROM_SYSTEM):
            warnings.append(
                f"{what} is in {path.parent}, which the system service cannot see (ProtectHome=yes); "
                f"install into a venv outside /home, e.g. /opt/{APP}"
            )
    if config.data_dir or config.store or config.capture_dir:
        warnings.append(
            f"data_dir, store and capture_dir should be unset for the system service: "
            f"it keeps its data in /var/lib/{APP} and cannot write elsewhere"
        )
    return warnings


def install(plan: UnitPlan) -> None:
    """Write the unit (owner-writable, world-readable, as systemd units are) and its directories."""
    if plan.scope == "system" and os.geteuid() != 0:
        raise UserError(f"writing {plan.path} needs root: run it with sudo")
    for directory in plan.writable:
        # ReadWritePaths= fails the start when a directory is missing.
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        plan.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = plan.path.with_name(plan.path.name + ".new")
        temporary.write_text(plan.text, encoding="utf-8")
        temporary.chmod(0o644)
        temporary.replace(plan.path)
    except OSError as exc:
        raise UserError(f"cannot write {plan.path}: {exc.strerror}") from None
