"""The processing activities this tool performs, as markdown for the user's Art. 30 register.

A starting point only: the controller completes it (transfers, security measures of the
mail provider, other tools).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.config.settings import Config

if TYPE_CHECKING:
    from proxy.rights.subject_rights import RetentionConfig


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
                    "address; reason for contact; tracking and marketing consent with date and how; dates of "
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
    out += [
        "## Security measures (this tool)",
        "",
        "- the relay listens on this machine only unless remote access with authentication is configured",
        "- the store is a file only its owner can read; deleted data is overwritten (secure_delete) and "
        "erasure rewrites the file so no copy remains",
        "- upstream connections verify the server's certificate; passwords are never stored in the config",
        "",
        "To complete: transfers outside the EU (depends on the mail provider), the provider's own measures, "
        "and other systems that hold the same contacts (CRM, mailbox).",
        "",
    ]
    return "\n".join(out)
