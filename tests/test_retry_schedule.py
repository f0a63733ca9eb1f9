"""Retry schedule honesty (issue 7, item 2) in real time: attempt numbers, gaps, final state."""

import itertools

import pytest
from scripted_server import ScriptedServer

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.delivery import Deliverer

DELAYS = (0.2, 0.3, 0.4, 0.5, 0.6)
FAIL = (500, b"{}", 0, {})
OK = (200, b"{}", 0, {})


def test_always_500_gives_exactly_six_attempts_with_honest_gaps(store, keys):
    with ScriptedServer(default=FAIL) as srv:
        body = catalogue.body_bytes(catalogue.generate("Entity.Event", seed=1))
        job = delivery.new_job("Entity.Event", "accredit", srv.url, body, Auth("rsa"), delays=DELAYS)
        Deliverer(store, keys).submit(job)
    assert [r["headers"]["X-JobAttempt"] for r in srv.requests] == ["0", "1", "2", "3", "4", "5"]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(srv.requests)]
    for gap, want in zip(gaps, DELAYS, strict=False):
        assert want * 0.8 <= gap <= want * 1.2, (gaps, DELAYS)
    assert store.get_job(job.id).state == "exhausted"


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_k_failures_then_200_gives_k_plus_1_attempts(store, keys, k):
    with ScriptedServer([FAIL] * k + [OK]) as srv:
        body = catalogue.body_bytes(catalogue.generate("Entity.Event", seed=k))
        job = delivery.new_job("Entity.Event", "accredit", srv.url, body, Auth("rsa"), delays=(0,) * 5)
        Deliverer(store, keys).submit(job)
    assert len(srv.requests) == k + 1
    assert store.get_job(job.id).state == "succeeded"
