"""The running service: store, rules, SMTP server, retry runner and watcher in one event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import ssl
import time
from typing import Any

from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.outbound.notices import NoticeBox
from proxy.outbound.retry import RetryRunner
from proxy.outbound.spool import Spool
from proxy.outbound.upstream import CaptureMaildir, SmtpUpstream, Upstream
from proxy.relay.smtp import RelayHandler, smtp_factory
from proxy.rules.ruleset import RuleHolder
from proxy.service import control
from proxy.service import sd_notify as notify
from proxy.service.rulewatch import start_watching
from proxy.service.state import Service
from proxy.service.status import announce, service_status, status_line
from proxy.service.unsubscribe import start_endpoint
from proxy.store import StoreError, open_store

log = logging.getLogger("gdpr_proxy.app")


def make_upstream(config: Config) -> Upstream:
    if config.upstream is None:
        return CaptureMaildir(config.capture_path)
    return SmtpUpstream(config.upstream)


def server_tls_context(config: Config) -> ssl.SSLContext | None:
    if not config.smtp.tls_certificate:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.smtp.tls_certificate, config.smtp.tls_key)
    return context


async def start_service(config: Config, rules: RuleHolder | None = None) -> Service:
    """Open the store, load the rules, bind the SMTP socket; ready when this returns."""
    rules = rules or RuleHolder(config.user_rules_path, cache=config.cache_path)
    store = await open_store(config)
    upstream = make_upstream(config)
    spool = Spool(config.queue_path)
    notices = NoticeBox(config, spool, upstream)
    handler = RelayHandler(config, store, rules, upstream, spool, notices)
    service = Service(config, store, rules, upstream, spool, handler)
    loop = asyncio.get_running_loop()
    try:
        service.server = await loop.create_server(
            smtp_factory(config, handler, server_tls_context(config)),
            host=config.listen.host,
            port=config.listen.port,
            reuse_address=True,
        )
    except BaseException:  # any failure to bind ends start-up at once, without a store left open
        await store.close()
        raise
    if config.unsubscribe.in_service:  # the one-click endpoint shares this store and these rules
        try:
            endpoint = await start_endpoint(config, store, rules)
        except BaseException:
            service.server.close()
            await store.close()
            raise
        service.tasks.append(loop.create_task(endpoint.serve_until(service.stopping)))
    # The tracker matchers are compiled in a worker thread while the first client connects.
    service.tasks.append(loop.create_task(asyncio.to_thread(rules.prepare)))
    runner = RetryRunner(
        spool, upstream, config.queue, config.listen.hostname, handler.record_spooled, handler.recheck, notices
    )
    handler.retry = runner

    def wake_runner() -> None:
        loop.call_soon_threadsafe(runner.wake.set)  # queue() runs in a worker thread

    notices.on_queued = wake_runner
    service.tasks.append(loop.create_task(runner.run(service.stopping)))
    service.tasks.append(loop.create_task(purge_daily(service)))
    service.tasks.append(loop.create_task(flush_counts_often(service)))
    if config.imap is not None:
        # the reply reader is imported only where a mailbox is followed: start-up stays quick
        from proxy.watcher.actions import make_watcher
        from proxy.watcher.imap.decisions import MailboxDecisions

        service.watcher, processor = make_watcher(config, store, rules, upstream)
        processor.notices = notices  # sender-side delivery problems reach the user's INBOX too
        service.tasks.append(loop.create_task(service.watcher.run(service.stopping)))
        decisions = MailboxDecisions(config.imap, store, notices, config.data_path / "review-summary.json")
        decisions.every = float(config.imap.poll_seconds)
        service.tasks.append(loop.create_task(decisions.run(service.stopping)))
    return service


async def flush_queue(service: Service) -> dict[str, Any]:
    """`gdpr-proxy queue flush`: every queued message is tried now."""
    count = await asyncio.to_thread(service.spool.retry_now)
    if service.handler.retry is not None:
        service.handler.retry.wake.set()
    return {"queued": count}


async def flush_counts_often(service: Service, every: float = 2.0) -> None:
    """Write the relay's daily counters every few seconds, and once more when stopping."""
    while not service.stopping.is_set():
        try:
            await asyncio.wait_for(service.stopping.wait(), timeout=every)
        except TimeoutError:
            pass
        await service.handler.flush_counts()


async def purge_daily(service: Service, first_after: float = 60.0) -> None:
    """Apply the retention limits a minute after start, then once a day."""
    from proxy.rights.subject_rights import purge  # needed a minute after start, not before listening

    delay = first_after
    while not service.stopping.is_set():
        try:
            await asyncio.wait_for(service.stopping.wait(), timeout=delay)
            return
        except TimeoutError:
            pass
        try:
            report = await purge(service.store, service.config.retention)
            if report.total:
                log.info("retention purge: %s", "; ".join(report.lines()))
        except StoreError as exc:
            log.error("retention purge failed, will try again tomorrow: %s", exc)
        delay = 24 * 3600


async def stop_service(service: Service, drain_seconds: float = 30.0) -> None:
    """Stop accepting, let transactions in flight finish, then close everything."""
    service.stopping.set()
    if service.server is not None:
        service.server.close()
    deadline = time.monotonic() + drain_seconds
    while service.handler.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    # The watcher and the retry runner end by themselves once `stopping` is set.
    _done, pending = await asyncio.wait(service.tasks, timeout=5) if service.tasks else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*service.tasks, return_exceptions=True)
    if service.watcher is not None:
        await service.watcher.close()
    await service.handler.flush_counts()  # what the drained transactions counted
    await service.upstream.close()
    await service.store.close()


async def serve(config: Config, ready_message: bool = True) -> None:
    service = await start_service(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def reload_rules() -> dict[str, Any]:
        notify.reloading()
        ok = await asyncio.to_thread(service.rules.reload)
        # READY=1 either way: with invalid rules the service keeps running on the old ones.
        notify.ready(status_line(service))
        return {"reloaded": ok, "rule_errors": [dataclasses.asdict(e) for e in service.rules.errors]}

    reloads: set[asyncio.Task[dict[str, Any]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(reload_rules())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    control_path = control.socket_path(config.data_path)
    try:
        control_server = await control.start_control_server(
            control_path, lambda: service_status(service), reload_rules, {"flush": lambda: flush_queue(service)}
        )
    except control.ControlError as exc:
        await stop_service(service, drain_seconds=0)
        raise UserError(str(exc)) from None

    def on_rule_reload(ok: bool) -> None:
        notify.status(status_line(service))
        if not ok and service.handler.notices is not None:  # the user hears of it in the mail client
            service.handler.notices.rules_error(service.rules.errors)

    service.tasks.append(start_watching(service.rules, service.stopping, on_reload=on_rule_reload))

    async def healthy() -> bool:
        return service.server is not None and service.server.is_serving()

    service.tasks.append(loop.create_task(notify.watchdog_loop(service.stopping, healthy)))
    if ready_message:
        announce(service)
    notify.ready(status_line(service))
    await stop.wait()
    notify.stopping()
    log.info("stopping: finishing %d transaction(s) in flight", service.handler.in_flight)
    await control.stop_control_server(control_server, control_path)
    await stop_service(service)
