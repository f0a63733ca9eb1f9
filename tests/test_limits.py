"""Request bodies over the size limit (1 MiB) are refused with 413 in each API family's envelope, nothing is
stored, and the server keeps serving (issue 7, item 6). Against the real `accessrc-sim serve` on waitress, so
chunked bodies (no Content-Length) are covered too."""
from __future__ import annotations

import json
import sqlite3

import pytest
import requests

from reliability_helpers import API_KEY, XKEY, ServeProcess

LIMIT = 1024 * 1024
BOTH = {"x-api-key": API_KEY, "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, keys_dir):
    server = ServeProcess(tmp_path_factory.mktemp("limits"), keys_dir)
    yield server.start()
    server.stop()


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly `size` bytes: {"event":"…","pad":"xxx…"}."""
    head = b'{"event":"DELIVERY_REFUND_REQUESTED","pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def _rows(served) -> int:
    db = sqlite3.connect(served.db)
    try:
        return sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("jobs", "subscriptions"))
    finally:
        db.close()


@pytest.mark.parametrize("path", ["/api/send", "/api/subscriptions", "/api/Event/Subscribe",
                                  "/api/Event/Unsubscribe", "/dashboard/api/send"])
def test_over_the_limit_is_413_in_the_accessrc_envelope(served, path):
    before = _rows(served)
    resp = requests.post(served.url + path, headers=BOTH, data=_json_of_size(LIMIT + 1), timeout=30)
    assert resp.status_code == 413
    assert resp.json() == {"error": {"code": 413, "message": f"request body is larger than the {LIMIT}-byte limit",
                                     "type": "PayloadTooLarge"}, "data": None, "status": "failed"}
    assert _rows(served) == before


def test_over_the_limit_on_accredit_routes_is_413_in_the_acr_envelope(served):
    body = json.dumps({"event": "BadgeExportZipFile.Created", "callbackUrl": "http://127.0.0.1:9/" + "p" * LIMIT})
    for path in ("/api/webhookSubscription", "/api/webhookSubscription/triggerSampleEventNotification"):
        resp = requests.post(served.url + path, headers=BOTH, data=body, timeout=30)
        assert resp.status_code == 413
        assert resp.json()["message"] == f"request body is larger than the {LIMIT}-byte limit"
        assert resp.json()["code"].startswith("ACR_")
    assert _rows(served) == 0


def test_exactly_the_limit_is_read_and_judged_on_its_content(served):
    resp = requests.post(served.url + "/api/send", headers=BOTH, data=_json_of_size(LIMIT), timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "pad"  # unknown field, not too large


def test_chunked_and_huge_bodies_are_refused_and_the_server_carries_on(served):
    def chunks(total):
        sent = 0
        while sent < total:
            yield b"x" * 65536
            sent += 65536

    chunked = requests.post(served.url + "/api/send", headers=BOTH, data=chunks(4 * LIMIT), timeout=30)
    assert chunked.status_code == 413 and chunked.json()["error"]["type"] == "PayloadTooLarge"
    huge = requests.post(served.url + "/api/send", headers=BOTH, data=b"{" * (40 * LIMIT), timeout=60)
    assert huge.status_code == 413
    assert _rows(served) == 0
    ok = requests.get(served.url + "/api/jobs", headers=XKEY, timeout=10)
    assert ok.status_code == 200 and requests.get(served.url + "/healthz", timeout=5).json()["status"] == "ok"
    assert "Traceback" not in served.output
