"""The processing activities this tool performs, as markdown for the user's Art. 30 register.

A starting point only: the controller completes it (transfers, security measures of the
mail provider, other tools).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.config.settings import Config

if TYPE_CHECKING:
    from proxy.rights.subject_rights import RetentionConfig


def security_measures(config: Config) -> list[str]:
    """What protects the data under this configuration: only what is true of it."""
    measures = []
    if config.listen.allow_remote:
        measures.append(f"the relay listens on {config.listen.host} for other machines; every client must log in")
    else:
        measures.append("the relay listens on this machine only")
    if config.uses_postgresql:
        measures.append(
            f"the store is a PostgreSQL database the team shares ({config.store_display}): who can read it, "
            "its encryption in transit, its backups and the server's own log of changes (WAL) are the "
            "database administrator's measures, to be described here; erasure rewrites the tables it touches"
        )
    else:
        measures.append(
            f"the store is a file only its owner can read ({config.store_display}); deleted data is overwritten "
            "(secure_delete) and erasure rewrites the file so no copy remains"
        )
    upstream = config.upstream
    if upstream is None:
        measures.append("capture mode: nothing is sent; messages are kept in a local folder only its owner can read")
    elif upstream.security == "none":
        measures.append(
            f"the connection to {upstream.host} is NOT encrypted (upstream.security: none): acceptable only for a "
            "server on this machine or a network you control"
        )
    else:
        how = "TLS from the start" if upstream.security == "tls" else "STARTTLS"
        trust = f"against the CA file {upstream.ca_file}" if upstream.ca_file else "against the system's trusted CAs"
        measures.append(f"the connection to {upstream.host} is encrypted ({how}); its certificate is verified {trust}")
    measures.append("passwords are never stored in the config: environment variables, files or systemd credentials")
    if config.unsubscribe.public_url:
        measures.append(
            f"one-click unsubscribe links ({config.unsubscribe.public_url}) carry the address and a signature made "
            "with a key kept in the store; a forged link is refused, and opening a link never unsubscribes"
        )
    return measures


def register_markdown(config: Config, retention: RetentionConfig) -> str:
    sender = config.sender
    controller = sender.company or "(sender.company not configured)"
    contact = sender.opt_out_address or "(sender.opt_out_address not configured)"
    if config.upstream is None:
        recipients = "none: capture mode, messages are written to a local folder and not sent"
    else:
        recipients = f"the outgoing mail server {config.upstream.host} (the e-mail provider that delivers the mail)"
    r = retention
    erasure = (
        "erased at once when a reply asks for it"
        if r.erasure_requests == "automatic"
        else "the address is blocked at once; erasure after a person confirms (`gdpr-proxy forget`)"
    )
    activities = [
        (
            "1. Prospecting e-mail to business contacts",
            [
                ("Purpose", "contacting professionals about the controller's offer (B2B prospecting)"),
                (
                    "Legal basis",
                    "legitimate interest, Art. 6(1)(f) GDPR; consent for consumer addresses "
                    "and for open tracking where the recipient's region requires it",
                ),
                ("Data subjects", "business contacts (prospects) and people who reply"),
                (
                    "Data categories",
                    "e-mail address; name, company, role, language, country; source of the "
                    "address and its particulars (e.g. the fair or the list provider); reason for contact; "
                    "whether the person is a prospect, a customer or wrote first; "
                    "tracking and marketing consent with date and how; dates of "
                    "first and last contact and last reply; delivery (bounce) state; Message-IDs of sent mail. "
                    "Message bodies are not stored",
                ),
                ("Recipients", recipients),
                (
                    "Retention",
                    f"contacts who never reply: {r.contacts_without_reply_days} days after the last "
                    f"message; records of sent messages: {r.relayed_messages_days} days",
                ),
            ],
        ),
        (
            "2. Honouring objections (suppression list)",
            [
                ("Purpose", "never writing again to people who objected or asked for erasure (Art. 17, 21 GDPR)"),
                ("Legal basis", "legal obligation, Art. 6(1)(c) GDPR"),
                (
                    "Data categories",
                    "e-mail address or domain, date, reason; after erasure only a keyed hash of the address",
                ),
                ("Recipients", "none"),
                ("Retention", "as long as the tool is used: the entry is what keeps the objection honoured"),
            ],
        ),
        (
            "3. Reading replies (opt-out, erasure requests, bounces)",
            [
                ("Purpose", 'detecting "No thanks", erasure requests and undeliverable addresses in replies'),
                ("Legal basis", "legal obligation (objections), legitimate interest (bounces), Art. 6(1)(c) and (f)"),
                (
                    "Data categories",
                    "sender address, the phrase or status found, where it was found, Message-ID, language, date",
                ),
                ("Recipients", "none"),
                (
                    "Retention",
                    f"classified replies: {r.verdicts_days} days (pending decisions are kept until "
                    f"decided); erasure requests: {erasure}",
                ),
            ],
        ),
        (
            "4. Data-subject requests",
            [
                ("Purpose", "answering access (Art. 15) and erasure (Art. 17) requests"),
                ("Legal basis", "legal obligation, Art. 6(1)(c) GDPR"),
                ("Data categories", "the data listed above for the requesting person"),
                ("Recipients", "the requesting person"),
                ("Retention", "exports are written where the user chooses; erasure keeps only a keyed hash"),
            ],
        ),
    ]
    out = [
        "# Record of processing activities (Art. 30 GDPR): gdpr-mail-proxy",
        "",
        f"- Controller: {controller}",
        f"- Contact for data protection requests: {contact}",
        f"- Privacy policy: {sender.privacy_policy_url or '(sender.privacy_policy_url not configured)'}",
        f"- Configuration: {config.source}",
        "",
    ]
    for title, rows in activities:
        out += [f"## {title}", ""]
        out += [f"- **{key}**: {value}" for key, value in rows]
        out.append("")
    out += ["## Security measures (this tool, as configured)", "", *(f"- {m}" for m in security_measures(config)), ""]
    out += [
        "To complete: transfers outside the EU (depends on the mail provider), the provider's own measures, "
        "and other systems that hold the same contacts (CRM, mailbox).",
        "",
    ]
    return "\n".join(out)
