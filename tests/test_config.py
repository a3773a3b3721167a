"""Config loading: defaults, the documented example, and errors that name file, line and key."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from proxy.cli.commands import main as gdpr_proxy
from proxy.config.settings import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def field_paths(cls: type, prefix: str = "") -> list[str]:
    paths = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        path = f"{prefix}{f.name}"
        paths.append(path)
        inner = [a for a in typing.get_args(hints[f.name]) if dataclasses.is_dataclass(a)] or (
            [hints[f.name]] if dataclasses.is_dataclass(hints[f.name]) else []
        )
        if inner and typing.get_origin(hints[f.name]) is not tuple:
            paths += field_paths(inner[0], path + ".")
    return paths


def test_example_documents_every_option():
    text = EXAMPLE.read_text()
    missing = [
        p for p in field_paths(Config) if not re.search(rf"(?m)^\s*#?\s*-?\s*{p.split('.')[-1]}:", text)
    ]
    assert missing == []


def test_example_is_valid():
    config = load_config(EXAMPLE, explicit=True)
    assert config.upstream is not None and config.upstream.host == "smtp.example.com"
    assert config.listen.port == 2525


def test_no_file_means_embedded_defaults(tmp_path):
    config = load_config(tmp_path / "absent.yaml")
    assert config.capture_mode and config.listen.host == "127.0.0.1" and config.listen.port == 2525
    assert str(config.store_path).endswith("gdpr-mail-proxy/store.sqlite3")


def test_errors_name_file_line_and_key_all_together(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "listen:\n"
        "  port: twenty\n"
        "upstream:\n"
        "  host: smtp.example.com\n"
        "  security: ssl\n"
        "  passwrod_env: X\n"
        "colour: blue\n"
    )
    with pytest.raises(ConfigError) as failure:
        load_config(path, explicit=True)
    text = str(failure.value)
    assert f"{path}:2: listen.port: expected a whole number" in text
    assert f"{path}:5: upstream.security: expected one of 'starttls', 'tls', 'none'" in text
    assert f"{path}:6: upstream.passwrod_env: unknown key" in text
    assert f"{path}:7: colour: unknown key" in text


def test_bad_combination_is_reported(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("upstream:\n  host: smtp.example.com\n  username: anna\n")
    with pytest.raises(ConfigError) as failure:
        load_config(path, explicit=True)
    text = str(failure.value)
    assert "upstream.username: needs password_env" in text
    assert "sender.company: required before sending for real" in text


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("listen:\n  port: 25\n   host: [\n")
    with pytest.raises(ConfigError) as failure:
        load_config(path, explicit=True)
    assert re.search(rf"{re.escape(str(path))}:\d+: \(top level\): not valid YAML", str(failure.value))


@pytest.mark.parametrize("auth", [False, True])
def test_non_loopback_bind_needs_explicit_permission_and_auth(tmp_path, auth, capsys):
    path = tmp_path / "c.yaml"
    text = "listen:\n  host: 0.0.0.0\n  allow_remote: true\n"
    if auth:
        text += "smtp:\n  require_auth: true\n  users:\n    - username: anna\n      password_env: PW\n"
    path.write_text(text)
    code = gdpr_proxy(["-c", str(path), "config", "check"])
    err = capsys.readouterr().err
    if auth:
        assert code == 0, err
    else:
        assert code == 1
        assert "smtp.require_auth: must be true when listening beyond loopback" in err


def test_serve_refuses_open_relay_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("listen:\n  host: 0.0.0.0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "proxy", "-c", str(path), "serve"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert f"{path}:2: listen.host: not a loopback address" in proc.stderr


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        gdpr_proxy(["suppress", "frobnicate"])
    assert exited.value.code == 2
