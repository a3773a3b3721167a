"""Public reply fixtures of talon, mail-parser-reply and email-reply-parser as raw messages (none is an opt-out).

Nothing of theirs is kept in this repository: the source distributions are fetched from
PyPI with pip into a cache directory (default ~/.cache/gdpr-mail-proxy/corpora, or
$GDPR_PROXY_CORPORA, or the directory given) and read from there.  Fixtures that are bare
text become a minimal message.  The sdists of mail-parser-reply and email-reply-parser do
not include their test e-mails; for those, pass a copy of the project's repository (a
checkout or a bare git directory) and they are read from it instead.

    python -m tests.corpus.public [--cache DIR] [--repo NAME=PATH ...] [--write DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path, PurePosixPath

DEFAULT_CACHE = Path("~/.cache/gdpr-mail-proxy/corpora")
CACHE_ENV = "GDPR_PROXY_CORPORA"
DOWNLOAD_TIMEOUT = 180  # seconds for one pip download


@dataclass(frozen=True)
class Source:
    name: str  # as on PyPI
    version: str
    folder: str  # where the fixtures are inside the project
    suffixes: tuple[str, ...]
    repository: str  # where the fixtures can be had when the sdist lacks them
    skip: tuple[str, ...] = ()  # path parts that hold expected outputs, not messages

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


SOURCES = (
    Source(
        "talon",
        "1.4.4",
        "tests/fixtures",
        (".eml", ".html", ""),
        "https://github.com/mailgun/talon",
        skip=("stripped", "tmp", "_reply_text", ".gitignore"),
    ),
    Source("mail-parser-reply", "1.36", "test/emails", (".txt",), "https://github.com/alfonsrv/mail-parser-reply"),
    Source("email-reply-parser", "0.5.12", "test/emails", (".txt",), "https://github.com/zapier/email-reply-parser"),
)


@dataclass(frozen=True)
class PublicCase:
    id: str  # source/path inside the project
    source: str
    raw: bytes
    expect: str = "not-opt-out"  # none asks to stop or to be erased: none, auto-reply or bounce are right


@dataclass
class PublicCorpus:
    cases: list[PublicCase]
    problems: list[str]  # what could not be had, said plainly


def cache_dir(given: Path | None = None) -> Path:
    if given is not None:
        return given.expanduser()
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def fetch_sdist(source: Source, cache: Path) -> Path:
    """The sdist archive in the cache, downloaded with pip when it is not there yet."""
    folder = cache / "sdists"
    found = _cached_sdist(source, folder)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", source.spec]
    try:
        done = subprocess.run(
            [*command, "-d", str(folder)], capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LookupError(f"{source.spec}: pip download did not finish ({exc})") from None
    found = _cached_sdist(source, folder)
    if done.returncode != 0 or found is None:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise LookupError(f"{source.spec}: pip download failed: {said[-1] if said else 'no output'}")
    return found


def _cached_sdist(source: Source, folder: Path) -> Path | None:
    stem = source.name.replace("-", "_")
    for name in (f"{stem}-{source.version}.tar.gz", f"{source.name}-{source.version}.tar.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _wanted(source: Source, relative: str) -> bool:
    path = PurePosixPath(relative)
    if any(s in relative for s in source.skip) or not path.name:
        return False
    return path.suffix in source.suffixes if path.suffix else "" in source.suffixes


def files_in_sdist(source: Source, archive: Path) -> dict[str, bytes]:
    """Fixture files inside the archive, by path relative to the fixture folder."""
    found: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if not member.isfile() or len(parts) < 2 or not parts[1].startswith(source.folder + "/"):
                continue
            relative = parts[1][len(source.folder) + 1 :]
            if _wanted(source, relative):
                handle = tar.extractfile(member)
                if handle is not None:
                    found[relative] = handle.read()
    return found


def files_in_repository(source: Source, repo: Path) -> dict[str, bytes]:
    """Fixture files from a copy of the project's repository: a checkout or a bare git directory."""
    folder = repo / source.folder
    if folder.is_dir():
        return {
            str(p.relative_to(folder).as_posix()): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and _wanted(source, str(p.relative_to(folder).as_posix()))
        }
    git = ["git", f"--git-dir={repo}"]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", "HEAD", source.folder], capture_output=True, check=False
    )
    if listing.returncode != 0:
        raise LookupError(f"{source.name}: {repo} is neither a checkout nor a git directory holding {source.folder}")
    found: dict[str, bytes] = {}
    for name in listing.stdout.decode().splitlines():
        relative = name[len(source.folder) + 1 :]
        if _wanted(source, relative):
            found[relative] = subprocess.run([*git, "show", f"HEAD:{name}"], capture_output=True, check=True).stdout
    return found


def as_message(source: Source, relative: str, data: bytes) -> bytes:
    """An .eml fixture as it is; a bare text or HTML fixture wrapped into a minimal reply."""
    if relative.endswith(".eml") or _looks_like_message(data):
        return data
    try:
        data.decode("utf-8")
        charset = "utf-8"
    except UnicodeDecodeError:
        charset = "iso-8859-1"
    subtype = "html" if relative.endswith(".html") else "plain"
    tag = hashlib.sha256(f"{source.name}/{relative}".encode()).hexdigest()[:16]
    head = [
        "From: Fixture Sender <sender@example.com>",
        "To: Anna Berger <anna.berger@nordlicht-software.eu>",
        "Subject: Re: Your message",
        f"Date: {format_datetime(datetime(2026, 11, 13, 9, 0, tzinfo=UTC))}",
        f"Message-ID: <{tag}@fixtures.invalid>",
        "MIME-Version: 1.0",
        f"Content-Type: text/{subtype}; charset={charset}",
        "Content-Transfer-Encoding: 8bit",
    ]
    body = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def _looks_like_message(data: bytes) -> bool:
    """True when the file starts with a header block that names a sender and a subject."""
    head = data[:4000].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n")
    if not all(re.match(rb"[A-Za-z][A-Za-z0-9-]*:|[ \t]", line) for line in head):
        return False
    return {b"from", b"subject"} <= {line.split(b":", 1)[0].lower() for line in head}


def load_public(cache: Path | None = None, repos: Mapping[str, Path] | None = None) -> PublicCorpus:
    """Every public fixture that can be had; what cannot is said in problems."""
    repos = repos or {}
    corpus = PublicCorpus([], [])
    folder = cache_dir(cache)
    for source in SOURCES:
        files: dict[str, bytes] = {}
        if source.name in repos:
            try:
                files = files_in_repository(source, repos[source.name])
            except (LookupError, OSError, subprocess.CalledProcessError) as exc:
                corpus.problems.append(str(exc))
        else:
            try:
                files = files_in_sdist(source, fetch_sdist(source, folder))
            except (LookupError, OSError, tarfile.TarError) as exc:
                corpus.problems.append(str(exc))
                continue
            if not files:
                corpus.problems.append(
                    f"{source.spec}: its sdist does not include {source.folder}; give a copy of {source.repository}"
                    f" with --repo {source.name}=PATH"
                )
        for relative, data in sorted(files.items()):
            corpus.cases.append(
                PublicCase(f"{source.name}/{relative}", source.name, as_message(source, relative, data))
            )
    return corpus


def iter_public(cache: Path | None = None, repos: Mapping[str, Path] | None = None) -> Iterator[PublicCase]:
    """The fixtures that can be had; a source that cannot is reported on stderr."""
    corpus = load_public(cache, repos)
    for problem in corpus.problems:
        print(f"public fixtures: {problem}", file=sys.stderr)
    yield from corpus.cases


def parse_repos(values: Sequence[str]) -> dict[str, Path]:
    repos: dict[str, Path] = {}
    known = {s.name for s in SOURCES}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or name not in known:
            raise SystemExit(f"--repo takes NAME=PATH with NAME one of {', '.join(sorted(known))}, not {value!r}")
        repos[name] = Path(path).expanduser()
    return repos


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache", type=Path, help=f"where the sdists are kept (default ${CACHE_ENV} or {DEFAULT_CACHE})"
    )
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="read NAME's fixtures from a copy of its repository (checkout or bare git directory)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--write", type=Path, metavar="DIR", help="write the messages as DIR/<source>/<name>.eml")
    args = parser.parse_args(argv)
    corpus = load_public(args.cache, parse_repos(args.repo))
    for problem in corpus.problems:
        print(f"not available: {problem}", file=sys.stderr)
    for source in SOURCES:
        print(f"{source.name}: {sum(c.source == source.name for c in corpus.cases)} fixtures")
    if args.write:
        for case in corpus.cases:
            target = args.write / (case.id.replace("/", "__") + ".eml")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(case.raw)
        print(f"{len(corpus.cases)} messages written to {args.write}")
    return 1 if corpus.problems and not corpus.cases else 0


if __name__ == "__main__":
    sys.exit(main())
