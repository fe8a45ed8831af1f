"""A small webhook receiver for demos and tests: prints each alert transition it gets and checks its signature.

``python -m simulator.webhook_receiver --secret whsec_...`` (``make webhook-receiver SECRET=whsec_...``) listens on
127.0.0.1:9000. ``--fail-first N`` answers 503 to the first N deliveries, to watch the API retry them.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.alerts.webhooks import verify_signature


@dataclass
class Delivery:
    headers: dict[str, str]
    body: str
    signature_valid: bool | None  # None: no secret to check with
    answered: int


@dataclass
class Receiver:
    """A threaded HTTP server on ``port`` (0: any free one); ``deliveries`` holds every request, in order."""

    secret: str | None = None
    fail_first: int = 0
    port: int = 0
    quiet: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    received: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                headers = {key.lower(): value for key, value in self.headers.items()}
                valid = None if receiver.secret is None else verify_signature(receiver.secret, headers, body)
                status = 503 if len(receiver.deliveries) < receiver.fail_first else (200 if valid is not False else 401)
                self.send_response(status)
                self.end_headers()
                delivery = Delivery(headers, body, valid, status)
                with receiver.received:  # also keeps concurrent deliveries' lines apart
                    receiver.deliveries.append(delivery)
                    receiver.received.notify_all()
                    if not receiver.quiet:
                        receiver.show(delivery)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # show() prints what matters

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """Whether ``count`` deliveries have arrived within ``timeout_s``."""
        with self.received:
            return self.received.wait_for(lambda: len(self.deliveries) >= count, timeout_s)

    @staticmethod
    def show(delivery: Delivery) -> None:
        event = json.loads(delivery.body)
        alert = event["alert"]
        why = alert["resolution"] if event["type"] == "alert.resolved" else alert["reason"]
        signed = {True: "signature ok", False: "SIGNATURE INVALID", None: "signature not checked"}
        print(
            f"{delivery.headers.get('webhook-id')} {event['type']:<18} robot={alert['robot_id']} "
            f"rule={alert['rule_name']!r} {why} [{signed[delivery.signature_valid]}, "
            f"answered {delivery.answered}]",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="webhook-receiver", description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", help="the webhook's whsec_ secret, to check signatures")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 to this many deliveries first")
    args = parser.parse_args(argv)
    receiver = Receiver(secret=args.secret, fail_first=args.fail_first, port=args.port)
    url = receiver.start()
    print(f"webhook receiver listening on {url} (Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
