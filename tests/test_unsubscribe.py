"""One-click unsubscribe (RFC 8058) through the running relay and its endpoint, over real sockets."""

from __future__ import annotations

import http.client
import re
import smtplib

from proxy.relay.steps.unsubscribe import make_token, verify_token
from tests.harness import RelayThread
from tests.ports import free_port
from tests.test_truthful_footers import FROM, message

PUBLIC = "https://unsubscribe.nordlicht.example/u"
ONE_CLICK = "List-Unsubscribe=One-Click"


def one_click_relay(relay_to, **extra) -> tuple[RelayThread, int]:
    port = free_port()
    relay = relay_to(unsubscribe={"public_url": PUBLIC, "port": port, "in_service": True}, **extra)
    return relay, port


def request(port: int, method: str, path: str, body: str = "", kind: str = "application/x-www-form-urlencoded"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": kind} if body else {}
    connection.request(method, path, body=body.encode() if body else None, headers=headers)
    response = connection.getresponse()
    page = response.read().decode("utf-8")
    connection.close()
    return response.status, page


def link_in(data: bytes) -> str:
    header = re.search(rb"List-Unsubscribe: (.*)\r\n", data)
    assert header is not None
    links = re.findall(r"<(https://[^>]+)>", header.group(1).decode())
    assert len(links) == 1
    return links[0]


def prospects_reached(received: list) -> list[list[str]]:
    """Recipients of the prospecting copies, leaving out notices to the salesperson."""
    return [r.rcpt_tos for r in received if r.mail_from == FROM and r.rcpt_tos != [FROM]]


def suppressed(relay: RelayThread, address: str) -> bool:
    assert relay.service is not None
    return relay.call(relay.service.store.find_suppression(address)) is not None


def test_each_recipient_gets_a_signed_link_of_their_own(upstream, relay_to):
    relay, _ = one_click_relay(relay_to)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail(FROM, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de, info@firma.at", "m1"))
    assert len(upstream.received) == 2  # one copy each: a link names one person
    links = {r.rcpt_tos[0]: link_in(r.data) for r in upstream.received}
    assert links["kontakt@firma.de"] != links["info@firma.at"]
    for r in upstream.received:
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in r.data
        assert links[r.rcpt_tos[0]].startswith(PUBLIC + "/")
        assert b"To: kontakt@firma.de, info@firma.at" in r.data  # the visible header is unchanged


def test_one_click_post_suppresses_exactly_that_recipient_and_a_get_does_not(upstream, relay_to):
    relay, port = one_click_relay(relay_to)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail(FROM, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de", "m1"))
    copy = next(r for r in upstream.received if r.rcpt_tos == ["kontakt@firma.de"])
    path = "/u/" + link_in(copy.data).rsplit("/")[-1]

    status, page = request(port, "GET", path)  # what a link scanner does
    assert status == 200
    assert 'lang="de"' in page and "Möchten Sie unter kontakt@firma.de keine E-Mails" in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page and 'method="post"' in page
    assert not suppressed(relay, "kontakt@firma.de")

    status, page = request(port, "POST", path, ONE_CLICK)  # what the mail provider does (RFC 8058)
    assert status == 200 and "Erledigt" in page
    assert suppressed(relay, "kontakt@firma.de")
    assert not suppressed(relay, "info@firma.at")
    assert request(port, "POST", path, ONE_CLICK)[0] == 200  # pressing twice is fine

    # and the relay honours it at once (the notice to the sender about it may come too)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail(FROM, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de", "m2"))
    assert prospects_reached(upstream.received[2:]) == [["info@firma.at"]]


def test_multipart_form_data_post_as_some_providers_send_it(upstream, relay_to):
    relay, port = one_click_relay(relay_to)
    assert relay.service is not None
    key = relay.call(relay.service.store.unsubscribe_key())
    body = '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n'
    status, _ = request(port, "POST", "/" + make_token(key, "jan@firma.pl"), body, "multipart/form-data; boundary=b")
    assert status == 200 and suppressed(relay, "jan@firma.pl")


def test_forged_or_altered_tokens_are_refused(upstream, relay_to):
    relay, port = one_click_relay(relay_to)
    assert relay.service is not None
    key = relay.call(relay.service.store.unsubscribe_key())
    genuine = make_token(key, "kontakt@firma.de")
    encoded, signature = genuine.split(".")
    other = make_token(key, "info@firma.at").split(".")[0]
    forged = [
        make_token(b"another key" * 3, "kontakt@firma.de"),  # signed with a key that is not the store's
        f"{other}.{signature}",  # someone else's address with this signature
        f"{encoded}.{'B' if signature[0] != 'B' else 'C'}{signature[1:]}",  # one character of it changed
        encoded,
        "not-a-token",
    ]
    for token in forged:
        status, page = request(port, "POST", "/u/" + token, ONE_CLICK)
        assert status == 403, token
        assert "not valid" in page
        assert request(port, "GET", "/u/" + token)[0] == 404
    assert not suppressed(relay, "kontakt@firma.de") and not suppressed(relay, "info@firma.at")
    assert verify_token(key, genuine) == "kontakt@firma.de"


def test_a_post_without_the_one_click_body_only_asks(upstream, relay_to):
    relay, port = one_click_relay(relay_to)
    assert relay.service is not None
    key = relay.call(relay.service.store.unsubscribe_key())
    status, page = request(port, "POST", "/u/" + make_token(key, "kontakt@firma.de"), "anything=else")
    assert status == 400 and 'method="post"' in page
    assert not suppressed(relay, "kontakt@firma.de")
    assert request(port, "PUT", "/u/x")[0] == 405


def test_hostile_requests_get_an_answer_not_a_crash(upstream, relay_to):
    import socket

    _, port = one_click_relay(relay_to)
    for raw in (b"GARBAGE\r\n\r\n", b"POST /u/x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"GET " + b"a" * 20000):
        with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(200)
        assert answer.startswith(b"HTTP/1.1 4"), answer
    assert request(port, "GET", "/u/x")[0] == 404  # still serving


def test_the_confirmation_page_speaks_the_persons_language(upstream, relay_to):
    relay, port = one_click_relay(relay_to)
    assert relay.service is not None
    key = relay.call(relay.service.store.unsubscribe_key())
    relay.call(relay.service.store.upsert_contacts([{"address": "jan@firma.de", "language": "pl"}], "test"))
    for address, words in (("jan@firma.de", "Wypisz mnie"), ("anne@societe.fr", "Me désinscrire")):
        status, page = request(port, "GET", "/u/" + make_token(key, address))
        assert status == 200 and words in page, page


def test_without_a_public_url_no_one_click_link(upstream, relay_to):
    relay = relay_to()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
        client.sendmail(FROM, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de", "m1"))
    assert len(upstream.received) == 1  # one copy for both: nothing personal in it
    assert b"List-Unsubscribe-Post" not in upstream.received[0].data


# -- a team: the endpoint on its own, on the shared PostgreSQL store -----------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.harness import upstream_settings, write_config  # noqa: E402
from tests.pg_server import PostgresServer, pg_url, postgres_server  # noqa: E402, F401 (fixtures)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the unsubscribe endpoint did not start")


def test_team_endpoint_on_postgresql_suppresses_for_every_relay(tmp_path: Path, pg_url: str, upstream):  # noqa: F811
    """Anna's relay signs the link; the team's endpoint (its own process, its own config) verifies it
    with the key in the shared store and suppresses there; Ben's relay then refuses the person."""
    port = free_port()
    unsubscribe = {"public_url": PUBLIC, "port": port}
    configs = {}
    for name in ("anna", "ben", "endpoint"):
        home = tmp_path / name
        home.mkdir()
        configs[name] = write_config(
            home, {**upstream_settings(upstream.port), "store": pg_url, "unsubscribe": unsubscribe}
        )
    anna, ben = RelayThread(configs["anna"]).start(), RelayThread(configs["ben"]).start()
    endpoint = subprocess.Popen(
        [sys.executable, "-m", "proxy", "-c", str(configs["endpoint"]), "unsubscribe-server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, endpoint)
        with smtplib.SMTP("127.0.0.1", anna.port, timeout=20) as client:
            client.sendmail(FROM, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de", "team-1"))
        copy = next(r for r in upstream.received if r.rcpt_tos == ["kontakt@firma.de"])
        token = link_in(copy.data).rsplit("/")[-1]
        assert request(port, "GET", "/u/" + token)[0] == 200
        assert not suppressed(ben, "kontakt@firma.de")
        assert request(port, "POST", "/u/" + token, ONE_CLICK)[0] == 200
        assert suppressed(ben, "kontakt@firma.de") and not suppressed(ben, "info@firma.at")
        with smtplib.SMTP("127.0.0.1", ben.port, timeout=20) as client:
            client.sendmail(FROM, ["kontakt@firma.de", "info@firma.at"], message("kontakt@firma.de", "team-2"))
        assert prospects_reached(upstream.received[2:]) == [["info@firma.at"]]
    finally:
        endpoint.terminate()
        _, err = endpoint.communicate(timeout=15)
        anna.stop()
        ben.stop()
    assert endpoint.returncode == 0, err.decode()
    assert b"kontakt@firma.de" not in err  # the log names the domain only
