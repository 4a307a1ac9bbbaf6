"""localstripe (the Stripe emulator from PyPI) as a child process, for tests.

``start_localstripe()`` runs ``python -m tests.localstripe_server``, which serves
localstripe's own aiohttp application exactly as ``localstripe --from-scratch``
does, with three differences that make it safe in a test suite:

* it listens on 127.0.0.1 only (localstripe binds ``::``, every interface);
* it binds port 0 and reports the port it got, so there is no free-port race;
* its store stays in memory: localstripe pickles its whole store to the fixed path
  ``/tmp/localstripe.pickle`` on every write (shared by every run on the machine,
  and reloaded at start-up without ``--from-scratch``).

It also exits by itself when its parent (pytest) dies. ``WebhookReceiver`` is a
plain threaded HTTP server that records the webhooks localstripe delivers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# localstripe accepts any key that starts with "sk_" and is longer than 5 characters.
API_KEY = "sk_test_localstripe"  # fake, localstripe accepts any: secret-scan: allow
REPO_ROOT = Path(__file__).resolve().parent.parent


def _request(
    url: str, *, method: str = "GET", data: bytes | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class LocalStripe:
    """A running localstripe process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def register_webhook(
        self, name: str, url: str, secret: str, events: list[str] | None = None
    ) -> None:
        """Make localstripe POST its events to ``url``, signed with ``secret``.

        Registrations are global to the process and cannot be removed: posting the
        same ``name`` again replaces that registration. ``events=None`` means all.
        """
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        status, _ = _request(
            f"{self.base_url}/_config/webhooks/{name}",
            method="POST",
            data=json.dumps(body).encode(),
        )
        if status != 200:
            raise RuntimeError(f"localstripe refused the webhook registration ({status})")

    def disable_webhook(self, name: str) -> None:
        """Stop deliveries to a registration (an empty event list matches nothing)."""
        self.register_webhook(name, "http://127.0.0.1:9/", "disabled", events=[])

    def flush(self) -> None:
        """Delete every object localstripe holds (webhook registrations stay)."""
        status, _ = _request(f"{self.base_url}/_config/data", method="DELETE")
        if status != 200:
            raise RuntimeError(f"localstripe refused to flush its data ({status})")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_localstripe(workdir: Path, *, timeout: float = 20) -> LocalStripe:
    """Start localstripe on a free 127.0.0.1 port and wait until it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "port"
    log_path = workdir / "localstripe.log"
    port_file.unlink(missing_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.localstripe_server",
                "--port-file",
                str(port_file),
                "--parent-pid",
                str(os.getpid()),
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LocalStripe(base_url="", process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited at start-up:\n{server.log_tail()}")
            text = port_file.read_text() if port_file.exists() else ""
            if text.endswith("\n"):
                server.base_url = f"http://127.0.0.1:{int(text)}"
                try:
                    # Listing has no side effect (GET /v1/balance emits an event).
                    status, _ = _request(f"{server.base_url}/v1/customers?limit=1", timeout=1)
                except OSError:
                    status = 0
                if status == 200:
                    return server
            time.sleep(0.05)
        raise RuntimeError(f"localstripe did not answer in {timeout} s:\n{server.log_tail()}")
    except BaseException:
        server.stop()
        raise


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST it gets."""

    secret: str = ""
    status: int = 200
    received: list[ReceivedWebhook] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        assert self._server is not None, "receiver not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhooks/stripe/"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                webhook = ReceivedWebhook(
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=body,
                    received_at=time.time(),
                )
                with receiver._changed:
                    receiver.received.append(webhook)
                    receiver._changed.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, predicate: Callable[[ReceivedWebhook], bool], *, timeout: float = 10
    ) -> ReceivedWebhook:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for webhook in self.received:
                    if predicate(webhook):
                        return webhook
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching webhook within {timeout} s")
                self._changed.wait(remaining)

    def wait_for_event(
        self, event_type: str, object_id: str, *, timeout: float = 10
    ) -> ReceivedWebhook:
        """The first delivered ``event_type`` whose ``data.object.id`` is ``object_id``."""

        def matches(webhook: ReceivedWebhook) -> bool:
            try:
                event = webhook.event
            except ValueError:
                return False
            return (
                event.get("type") == event_type
                and event.get("data", {}).get("object", {}).get("id") == object_id
            )

        return self.wait_for(matches, timeout=timeout)

    def events_for(self, object_id: str) -> list[dict[str, Any]]:
        with self._changed:
            webhooks = list(self.received)
        events = [w.event for w in webhooks]
        return [e for e in events if e.get("data", {}).get("object", {}).get("id") == object_id]


def _serve(port_file: Path, parent_pid: int | None) -> None:
    """Child-process entry point: localstripe's app on 127.0.0.1, store in memory."""
    import asyncio
    import logging
    import socket

    from aiohttp import web
    from localstripe import resources, server

    def no_op(self: Any) -> None:
        return None

    resources.Store.dump_to_disk = no_op  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = no_op  # type: ignore[method-assign]

    # Stripe lists PaymentIntents and charges by a `created` range (gte/gt/lt/lte
    # together); localstripe takes none (intents) or one bound (charges). Filter here,
    # as Stripe does, so the reconciliation desk's two list calls run unchanged.
    def created_range(cls: Any) -> None:
        base = cls._api_list_all

        def list_all(url: str, created: Any = None, **kwargs: Any) -> Any:
            listed = base(url, **kwargs)
            if isinstance(created, dict):
                tests = {
                    "gte": lambda t, v: t >= v,
                    "gt": lambda t, v: t > v,
                    "lte": lambda t, v: t <= v,
                    "lt": lambda t, v: t < v,
                }
                bounds = [(tests[op], int(value)) for op, value in created.items()]
                listed._list = [
                    obj for obj in listed._list if all(ok(obj.created, v) for ok, v in bounds)
                ]
            return listed

        cls._api_list_all = list_all

    created_range(resources.PaymentIntent)
    created_range(resources.Charge)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))

    async def exit_with_parent(app: web.Application) -> None:
        async def watch() -> None:
            while os.getppid() == parent_pid:
                await asyncio.sleep(1)
            os._exit(0)

        if parent_pid is not None:
            app["parent_watch"] = asyncio.ensure_future(watch())

    server.app.on_startup.append(exit_with_parent)
    logger = logging.getLogger("aiohttp.access")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler())
    port_file.write_text(f"{sock.getsockname()[1]}\n")
    web.run_app(server.app, sock=sock, access_log=logger, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args()
    _serve(args.port_file, args.parent_pid)


if __name__ == "__main__":
    main()
