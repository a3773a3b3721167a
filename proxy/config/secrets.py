"""Where passwords come from: an environment variable, a file, or a systemd credential.

Never inline in the config: a config file gets copied, pasted and committed.
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretError(Exception):
    """A secret was named but could not be read; the message never contains the secret."""


def read_secret(env: str | None = None, file: str | None = None, credential: str | None = None) -> str | None:
    """Return the secret from the first source that is set, or None when none is configured.

    ``credential`` is looked up in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
    A trailing newline (as ``echo`` writes) is removed; other whitespace is kept.
    """
    if credential:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if directory and (Path(directory) / credential).is_file():
            return _read(Path(directory) / credential)
        if not env and not file:
            raise SecretError(f"systemd credential {credential!r} not found (is LoadCredential= set?)")
    if env:
        value = os.environ.get(env)
        if value is None:
            if not file:
                raise SecretError(f"environment variable {env} is not set")
        else:
            return value
    if file:
        return _read(Path(file).expanduser())
    return None


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    return text[:-1] if text.endswith("\n") else text
