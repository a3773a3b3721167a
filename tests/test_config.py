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
def test_non_loopback_bind_needs_explicit_permission_and_auth(tmp_path, auth, capsys, monkeypatch):
    monkeypatch.setenv("PW", "local-password")
    path = tmp_path / "c.yaml"
    text = "listen:\n  host: 0.0.0.0\n  allow_remote: true\n"
    if auth:
        text += "smtp:\n  require_auth: true\n  users:\n    - username: anna\n      password_env: PW\n"
    path.write_text(text)
    code = gdpr_proxy(["-c", str(path), "config", "check"])
    err = capsys.readouterr().err
    if auth:
        assert code == 1 and "smtp.tls_certificate: required when listening beyond loopback" in err, err
        path.write_text(text + "  tls_certificate: relay.crt\n  tls_key: relay.key\n")
        code = gdpr_proxy(["-c", str(path), "config", "check"])
        err = capsys.readouterr().err
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


# --- start-up and `config check` on each bad input (issue 13) ---

GOOD_SENDER = (
    "sender:\n  name: Anna Nowak\n  company: Nordlicht\n  privacy_policy_url: https://nordlicht.example/privacy\n"
    "  opt_out_address: optout@nordlicht.example\n"
)


LOCAL_UPSTREAM = "  host: 127.0.0.1\n  port: 2587\n  security: none\n"


def live_config(tmp_path: Path, upstream: str = LOCAL_UPSTREAM, extra: str = "") -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(f"listen:\n  port: 2525\nupstream:\n{upstream}{GOOD_SENDER}{extra}")
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = gdpr_proxy(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_config_check_passes_a_good_live_config(tmp_path, capsys):
    code, text = check(live_config(tmp_path), capsys)
    assert code == 0, text
    assert "OK" in text


def test_config_check_refuses_the_unedited_example(monkeypatch, capsys):
    monkeypatch.setenv("GDPR_PROXY_SMTP_PASSWORD", "s3cret")
    code, text = check(EXAMPLE, capsys)
    assert code == 1
    assert "upstream.host: 'smtp.example.com' is the example's placeholder" in text
    assert "upstream.username: 'anna.nowak@example.com' is the example's placeholder" in text


def test_config_check_names_the_unset_password_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RELAY_TEST_UPSTREAM_PW", raising=False)
    path = live_config(
        tmp_path,
        "  host: 127.0.0.1\n  port: 2587\n  security: none\n  username: anna\n  password_env: RELAY_TEST_UPSTREAM_PW\n",
    )
    code, text = check(path, capsys)
    assert code == 1
    assert "upstream.password_env: environment variable RELAY_TEST_UPSTREAM_PW is not set" in text
    monkeypatch.setenv("RELAY_TEST_UPSTREAM_PW", "")
    code, text = check(path, capsys)
    assert code == 1 and "upstream.password_env: the password is empty" in text
    monkeypatch.setenv("RELAY_TEST_UPSTREAM_PW", "s3cret")
    assert check(path, capsys)[0] == 0


def test_config_check_reads_imap_and_local_user_passwords(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RELAY_TEST_IMAP_PW", raising=False)
    monkeypatch.delenv("RELAY_TEST_LOCAL_PW", raising=False)
    extra = (
        "imap:\n  host: 127.0.0.1\n  username: anna\n  security: none\n  password_env: RELAY_TEST_IMAP_PW\n"
        "smtp:\n  users:\n    - username: anna\n      password_file: " + str(tmp_path / "missing.pw") + "\n"
    )
    code, text = check(live_config(tmp_path, extra=extra), capsys)
    assert code == 1
    assert "imap.password_env: environment variable RELAY_TEST_IMAP_PW is not set" in text
    assert "smtp.users[0] (anna).password_file: cannot read secret file" in text


@pytest.mark.parametrize(
    ("upstream", "extra", "expected"),
    [
        ("  host: 127.0.0.1\n  port: 70000\n  security: none\n", "", "upstream.port: must be between 1 and 65535"),
        ("  host: 127.0.0.1\n  security: none\n", "", None),
        (LOCAL_UPSTREAM, "listen:\n  port: 70000\n", "listen.port: must be between 1 and 65535"),
        ("  host: 127.0.0.1\n  security: none\n", "sender:\n  name: ' '\n", "sender.name: is only spaces"),
        (
            "  host: 127.0.0.1\n  security: none\n",
            "sender:\n  privacy_policy_url: nordlicht.example/privacy\n",
            "sender.privacy_policy_url: not a web address",
        ),
        (
            "  host: 127.0.0.1\n  security: none\n",
            "sender:\n  opt_out_address: optout at nordlicht\n",
            "sender.opt_out_address: not an e-mail address",
        ),
        (
            "  host: 127.0.0.1\n  security: none\n",
            "sender:\n  unsubscribe_url: http://nordlicht.example/u\n",
            "sender.unsubscribe_url: must be an https:// address",
        ),
        ("  host: 'smtp.nordlicht .example'\n", "", "upstream.host: a host name has no spaces"),
    ],
)
def test_config_check_on_each_bad_input(tmp_path, capsys, upstream, extra, expected):
    path = live_config(tmp_path, upstream)
    if extra:  # later keys of the same section override: merge by hand
        import yaml

        data = yaml.safe_load(path.read_text())
        for section, values in yaml.safe_load(extra).items():
            data[section] = {**data.get(section, {}), **values}
        path.write_text(yaml.safe_dump(data))
    code, text = check(path, capsys)
    if expected is None:
        assert code == 0, text
    else:
        assert code == 1 and expected in text, text


def test_serve_accepts_c_after_the_command_and_exits_at_once_on_bad_input(tmp_path):
    path = live_config(tmp_path)
    data = path.read_text().replace("port: 2525", "port: 70000")
    path.write_text(data)
    proc = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "-c", str(path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "listen.port: must be between 1 and 65535, got 70000" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_on_a_busy_port_exits_with_one_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "c.yaml"
        path.write_text(f"listen:\n  port: {port}\ndata_dir: {tmp_path / 'data'}\n")
        proc = subprocess.run(
            [sys.executable, "-m", "proxy", "serve", "-c", str(path)], capture_output=True, text=True, timeout=30
        )
    assert proc.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
