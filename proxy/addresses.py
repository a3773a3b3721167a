"""Address normalisation: one canonical form for every comparison and every stored address.

Comparisons are deliberately broad (whole address lower-cased, sub-address tag removed by
default) because a miss means mailing someone who opted out, while a false match only
means the user checks a refused recipient.
"""

from __future__ import annotations

from dataclasses import dataclass


class AddressError(ValueError):
    """Text that is not a usable mailbox address."""


@dataclass(frozen=True)
class AddressPolicy:
    strip_subaddress: bool = True
    subaddress_separators: str = "+"


DEFAULT_POLICY = AddressPolicy()


def _idna_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    if not domain or any(c in domain for c in ' \t\r\n<>@,;"\\'):
        raise AddressError(f"invalid domain {domain!r}")
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise AddressError(f"invalid international domain {domain!r}: {exc}") from None


def normalise_domain(domain: str) -> str:
    return _idna_domain(domain.lstrip("@"))


def normalise(address: str, policy: AddressPolicy = DEFAULT_POLICY) -> str:
    """Canonical form: ``local@domain``, lower case, IDNA domain, tag removed per policy."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise AddressError(f"not an e-mail address: {address!r}")
    if any(c in local for c in "\r\n\t <>") or len(text) > 320:
        raise AddressError(f"not an e-mail address: {address!r}")
    local = local.lower()
    if policy.strip_subaddress:
        for sep in policy.subaddress_separators:
            head = local.split(sep, 1)[0]
            if head:
                local = head
    return f"{local}@{_idna_domain(domain)}"


def domain_of(normalised_address: str) -> str:
    return normalised_address.rpartition("@")[2]


def parent_domains(domain: str) -> list[str]:
    """``a.b.example.org`` -> [``a.b.example.org``, ``b.example.org``, ``example.org``]."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


def top_level_domain(domain: str) -> str:
    return domain.rpartition(".")[2]
