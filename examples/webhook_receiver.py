"""Receive provisio's webhooks: verify each signature, skip redeliveries, answer 2xx quickly."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["WEBHOOK_SECRET"])  # the whsec_… shown when the endpoint was created
seen: set[str] = set()  # delivery is at least once: keep the ids you handled (a table, in production)


class Receiver(BaseHTTPRequestHandler):  # one request at a time (HTTPServer): no race on `seen`
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = webhook.verify(body, dict(self.headers))  # checks the signature and the timestamp
        except WebhookVerificationError:
            self.send_response(400)
            self.end_headers()
            return
        if self.headers["webhook-id"] not in seen:
            seen.add(self.headers["webhook-id"])
            member = event["data"].get("member", {})
            print(event["type"], event["workspace"], member.get("userName"), flush=True)
        self.send_response(204)  # anything but 2xx (or no answer in 10 s) is retried, in order
        self.end_headers()


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver).serve_forever()
