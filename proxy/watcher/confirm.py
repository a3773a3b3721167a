"""The optional note to someone who opted out: "you have been removed", in their language.

Sent straight to the upstream server, not through the relay (the person is suppressed by
then), marked Auto-Submitted so that their own auto-responder does not answer it.
"""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

from proxy.config.settings import SenderConfig
from proxy.relay.headers import safe_header_value
from proxy.rules.answers import AnswerRules


def confirmation_message(
    answers: AnswerRules, language: str | None, to: str, sender: SenderConfig, in_reply_to: str | None
) -> bytes:
    code, texts = answers.pick(language)
    if not texts.removed.strip():
        code, texts = answers.pick("en")
    values = {
        "address": to,
        "company": sender.company,
        "sender_name": sender.name,
        "opt_out_address": sender.opt_out_address,
        "privacy_policy_url": sender.privacy_policy_url,
    }
    message = EmailMessage()
    message["From"] = email.utils.formataddr((sender.name, sender.opt_out_address))
    message["To"] = to
    message["Subject"] = safe_header_value(texts.removed_subject.format_map(_Keep(values)))
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.opt_out_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answered by another robot
    message["Content-Language"] = code
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    message.set_content(texts.removed.format_map(_Keep(values)) + "\n")
    return message.as_bytes(policy=email.policy.SMTP)


class _Keep(dict[str, str]):
    """Placeholders the note does not use are left as written rather than failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
