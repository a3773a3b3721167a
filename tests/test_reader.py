"""Reading what the person wrote, and nothing of the quoted original or our footer."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.classify.htmltext import html_to_text
from proxy.classify.quotes import strip_quoted, unflow
from proxy.classify.reader import MAX_NEW_TEXT, Reply, read_reply
from proxy.rules.optout import OptoutRules, load_optout_rules

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "replies"
FOOTER = ['Reply "No thanks" or STOP and you will be removed']


@pytest.fixture(scope="module")
def rules() -> OptoutRules:
    return load_optout_rules(ROOT / "rules" / "optout.yaml")


def read(name: str, rules: OptoutRules) -> Reply:
    return read_reply((FIXTURES / name).read_bytes(), FOOTER, rules.quoting)


def mail(body: str, headers: str = "", ctype: str = "text/plain; charset=utf-8") -> bytes:
    head = f"From: Anna <anna@acme.example>\nSubject: Re: Offer\n{headers}Content-Type: {ctype}\n\n"
    return (head + body).encode()


@pytest.mark.parametrize(
    ("name", "expected", "absent"),
    [
        ("gmail_en_positive_quotes_footer.eml", "could you walk me through it on Thursday?", "No thanks"),
        ("gmail_de_nein_danke_top_posted.eml", "Nein danke.", "STOP"),
        ("gmail_de_positive_quotes_footer.eml", "rufen Sie mich morgen Vormittag an", "Nein danke"),
        ("outlook_fr_from_sent_block.eml", "Non merci.", "STOP"),
        ("outlook_pl_od_wyslano.eml", "Nie jesteśmy zainteresowani.", "STOP"),
        ("outlook_it_da_inviato_positive.eml", "fissare un incontro giovedì?", "No grazie"),
        ("outlook_de_urspruengliche_nachricht.eml", "Kein Bedarf, danke.", "Nein danke"),
        ("thunderbird_de_original_message.eml", "Bitte austragen.", "Nein danke"),
        ("outlook_en_html_only_divRplyFwdMsg.eml", "Please remove me from your list.", "No thanks"),
        ("outlook_en_html_positive_appendonsend.eml", "Yes, let's meet on Tuesday", "No thanks"),
        ("apple_it_blockquote_cite.eml", "No grazie.", "STOP"),
        ("apple_es_html_only.eml", "No gracias, por favor darme de baja.", "STOP"),
        ("thunderbird_en_flowed_positive.eml", "Could you send a few times that work for you?", "STOP"),
        ("thunderbird_pl_iso8859_2_flowed.eml", "proszę mnie wypisać. Dziękuję.", "STOP"),
        ("outlook_cs_windows1250_base64.eml", "Ne děkuji, nemáme zájem.", "STOP"),
        ("gmail_ar_windows1256_qp.eml", "لا شكراً، يرجى إلغاء الاشتراك.", "STOP"),
        ("gmail_fr_erasure.eml", "Merci de supprimer mes données personnelles", "Non merci"),
        ("outlook_es_erasure.eml", "borren todos mis datos", "No gracias"),
    ],
)
def test_fixture_new_text(name: str, expected: str, absent: str, rules: OptoutRules) -> None:
    reply = read(name, rules)
    assert expected in reply.new_text
    assert absent not in reply.new_text
    # Attribution lines and header blocks of the original never survive either.
    for marker in ("wrote:", "schrieb", "a écrit", "ha scritto", "escribió", "pisze:", "كتب", "Jane Seller"):
        assert marker not in reply.new_text


def test_flowed_lines_are_joined(rules: OptoutRules) -> None:
    reply = read("thunderbird_en_flowed_positive.eml", rules)
    assert reply.new_text.splitlines()[0] == (
        "Thanks Jane, I would like a demo next week. Could you send a few times that work for you?"
    )


def test_flowed_delsp_removes_the_soft_space() -> None:
    assert unflow("take me off your mailing  \nlist.", delsp=True) == "take me off your mailing list."
    assert unflow("a \nb", delsp=False) == "a b"
    assert unflow("-- \nsig", delsp=False) == "-- \nsig"


def test_headers_ids_and_sender(rules: OptoutRules) -> None:
    reply = read("outlook_pl_od_wyslano.eml", rules)
    assert reply.sender == "adam.nowak@firma.example"
    assert reply.subject == "Odp: Zamknięcie miesiąca"
    assert reply.message_id == "VI1PR@eurprd.prod.outlook.com"
    # In-Reply-To first, then References, without repeats or angle brackets.
    assert reply.in_reply_to == ("20250303100000.21@seller.example", "20250303100000.20@seller.example")


def test_sender_is_lower_cased(rules: OptoutRules) -> None:
    assert read("gmail_en_positive_quotes_footer.eml", rules).sender == "anna.kowalski@acme.example"


def test_raw_8bit_subject_is_decoded_with_the_body_charset(rules: OptoutRules) -> None:
    assert read("thunderbird_pl_iso8859_2_flowed.eml", rules).subject == "Re: Zamknięcie miesiąca w trzy dni"


def test_signature_delimiter_cuts_our_plain_footer() -> None:
    reply = read_reply(mail("Call me tomorrow.\n-- \nNot interested? Reply No thanks or STOP."))
    assert reply.new_text == "Call me tomorrow."


def test_footer_fingerprint_cuts_a_rewritten_footer() -> None:
    # A client dropped the "-- " line and the quoting; only the fingerprint recognises it.
    body = "Yes, send details.\n\nNot interested? Reply \u201cNo thanks\u201d or STOP and you will be removed."
    assert read_reply(mail(body), FOOTER).new_text == "Yes, send details."
    assert "STOP" in read_reply(mail(body)).new_text


def test_inline_answers_between_quotes_are_kept(rules: OptoutRules) -> None:
    body = (
        "On Mon, 3 Mar 2025 at 10:00, Jane <jane@seller.example> wrote:\n"
        "> Would a call on Thursday work?\n"
        "Yes, Thursday 3pm.\n"
        "> Reply No thanks or STOP.\n"
    )
    assert read_reply(mail(body), (), rules.quoting).new_text == "Yes, Thursday 3pm."


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
        "-------- Message d'origine --------",
        "-------- Original Message --------",
        "---------- Forwarded message ---------",
        "________________________________",
    ],
)
def test_separators_cut(separator: str, rules: OptoutRules) -> None:
    body = f"Nein danke\n\n{separator}\nReply No thanks or STOP\n"
    assert read_reply(mail(body), (), rules.quoting).new_text == "Nein danke"


@pytest.mark.parametrize(
    ("from_key", "sent_key"),
    [("From", "Sent"), ("Von", "Gesendet"), ("De ", "Envoyé "), ("Od", "Wysłano"), ("Da", "Inviato"),
     ("De", "Enviado"), ("*From:*", "*Sent:*"), ("من", "تم الإرسال")],
)  # fmt: skip
def test_outlook_header_blocks_cut(from_key: str, sent_key: str, rules: OptoutRules) -> None:
    from_line = from_key if from_key.endswith(":*") else f"{from_key}:"
    sent_line = sent_key if sent_key.endswith(":*") else f"{sent_key}:"
    body = f"Ok\n\n{from_line} Jane Seller <jane@seller.example>\n{sent_line} 3 March\nTo: x\n\nSTOP"
    assert read_reply(mail(body), (), rules.quoting).new_text == "Ok"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 3 Mar 2025 at 10:00, Jane Seller <jane@seller.example> wrote:",
        "Le lun. 3 mars 2025 à 10:00, Jane Seller <jane@seller.example> a écrit :",
        "Am Mo., 3. März 2025 um 10:00 Uhr schrieb Jane Seller <jane@seller.example>:",
        "W dniu 3.03.2025 o 10:00, Jane Seller pisze:",
        "pon., 3 mar 2025 o 10:00 Jane Seller <jane@seller.example> napisała:",
        "Il giorno lun 3 mar 2025 alle ore 10:00 Jane Seller <jane@seller.example> ha scritto:",
        "El lun, 3 mar 2025 a las 10:00, Jane Seller (<jane@seller.example>) escribió:",
        "في الاثنين، 3 مارس 2025 في 10:00 ص، Jane Seller <jane@seller.example> كتب:",
        "Op ma 3 mrt 2025 om 10:00 schreef Jane Seller <jane@seller.example>:",
        "Em seg., 3 de mar. de 2025 às 10:00, Jane Seller <jane@seller.example> escreveu:",
    ],
)
def test_attribution_without_quoting_ends_the_reply(attribution: str, rules: OptoutRules) -> None:
    # Outlook-style: the original follows without ">".
    body = f"Bonjour\n\n{attribution}\nReply No thanks or STOP\n"
    assert read_reply(mail(body), (), rules.quoting).new_text == "Bonjour"


def test_wrapped_gmail_attribution(rules: OptoutRules) -> None:
    body = "Ok\n\nOn Mon, 3 Mar 2025 at 10:00, Jane Seller <\njane@seller.example> wrote:\nSTOP\n"
    assert read_reply(mail(body), (), rules.quoting).new_text == "Ok"


def test_a_line_before_an_attribution_is_not_taken_for_one(rules: OptoutRules) -> None:
    body = "Please remove me.\nOn Mon, 3 Mar 2025 at 10:00, Jane wrote:\nSTOP\n"
    assert read_reply(mail(body), (), rules.quoting).new_text == "Please remove me."


def test_without_rules_only_neutral_markers_are_known() -> None:
    body = "Hello\n> quoted STOP\nThere\n-----Original Message-----\nSTOP"
    assert read_reply(mail(body)).new_text == "Hello\nThere"


def test_html_to_text_drops_quotes_styles_and_our_footer() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body><script>x()</script>"
        "<p>Keep&nbsp;this</p><div class='gmail_quote'>gmail</div>"
        "<blockquote type='cite'><div>apple<blockquote>nested</blockquote>still</div></blockquote>"
        "<div class='moz-cite-prefix'>On x wrote:</div>"
        "<p>and this<br>line</p><div class='gdpr-mail-proxy-footer'><p>No thanks</p></div>"
        "<div id='x_divRplyFwdMsg'>From: Jane</div><p>after the original starts</p></body></html>"
    )
    assert html_to_text(html) == "Keep this\n\nand this\nline"


def test_html_to_text_survives_broken_html() -> None:
    assert html_to_text("<div><p>Stop<blockquote>unclosed") == "Stop"
    assert html_to_text("<<<>>>&#xZZ;") is not None


def test_html_preferred_only_when_plain_is_empty() -> None:
    raw = (
        b"From: a@b.example\nSubject: x\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\n\n--b\nContent-Type: text/html\n\n<p>Stop please</p>\n--b--\n"
    )
    assert read_reply(raw).new_text == "Stop please"


def test_attachments_and_attached_messages_are_not_read() -> None:
    raw = (
        b"From: a@b.example\nSubject: x\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSee attached.\n"
        b"--b\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nSTOP\n"
        b"--b\nContent-Type: message/rfc822\n\nSubject: y\n\nNo thanks\n--b--\n"
    )
    assert read_reply(raw).new_text == "See attached."


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"From: \xff\xfe\nSubject: \xe9\xe8\n\n\xe9t\xe9",
        b"Content-Type: multipart/mixed; boundary=\"never\"\n\nno boundary here",
        b"Content-Type: text/plain; charset=x-no-such-charset\n\nSTOP",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=E9",
        b"Content-Type: text/html; charset=utf-8\n\n<div",
        b"From: <<<@@@>>>\nIn-Reply-To: garbage without brackets\n\nhi",
    ],
)
def test_malformed_input_never_raises(raw: bytes, rules: OptoutRules) -> None:
    reply = read_reply(raw, FOOTER, rules.quoting)
    assert isinstance(reply.new_text, str)


def test_unknown_charset_falls_back_to_text() -> None:
    raw = b"Content-Type: text/plain; charset=x-no-such-charset\n\nSTOP \xe9"
    assert read_reply(raw).new_text.startswith("STOP")


def test_huge_text_is_capped(rules: OptoutRules) -> None:
    reply = read_reply(mail("word " * 100_000), (), rules.quoting)
    assert len(reply.new_text) <= MAX_NEW_TEXT


def test_strip_quoted_keeps_text_without_markers() -> None:
    assert strip_quoted("line one\n\nline two\n") == "line one\n\nline two"


def test_flowed_line_before_signature_is_not_joined_to_it() -> None:
    assert unflow("No thanks \n-- \nAnna", delsp=False) == "No thanks \n-- \nAnna"
    assert unflow("> quoted \n> more\nmine", delsp=False) == "> quoted more\nmine"


def test_attribution_line_patterns_are_gated_by_how_a_line_ends() -> None:
    from proxy.classify.quotes import QuoteRules, _line_ends

    # every pattern ends in ":" (direction marks may follow): other lines skip the search
    assert _line_ends([r"\bwrote:$", "كتب\\s*:[\u200e\u200f]*$"]) == (frozenset(":"), "\u200e\u200f")
    assert _line_ends([r"[:：]$"]) == (frozenset(":："), "")
    # a pattern that could end otherwise turns the gate off
    for pattern in (r"wrote$", r"wrote:?$", r"a:$|b", r"wrote:\s*", r":[:]*$"):
        assert _line_ends([r"\bwrote:$", pattern]) is None
    rules = QuoteRules.build([], ["\\bcitó\\s*:[\u200e\u200f]*$"], [], ["From"], ["Sent"])
    text = "Yes please.\nJuan citó:\u200f\nthe original"
    assert strip_quoted(text, rules) == "Yes please."
