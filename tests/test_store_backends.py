"""The store's contract, on both backends (issue 16): every test here runs on a new SQLite file and on a new
database of a real PostgreSQL server (tests/postgres_server.py), through the one Store interface."""

from __future__ import annotations

import json
import threading
import time

import pytest

from simulator import catalogue, delivery
from simulator.auth import Auth
from simulator.models import DELIVERING, EXHAUSTED, PENDING, SUCCEEDED, Attempt
from simulator.store import Call, LeaseLost, ProviderObject, Store
from simulator.subscriptions import Schedule, Subscription


def _job(url="http://127.0.0.1:9/h", event="DELIVERY_REFUND_REQUESTED", body=None, source="api"):
    spec = catalogue.get_event(event)
    body = body if body is not None else catalogue.body_bytes(catalogue.generate(spec.name, seed=1))
    return delivery.new_job(
        spec.name, spec.platform, url, body, Auth("hmac", secret="s3cr3t"), delays=(1.0,), timeout=5, source=source
    )


def _attempt(job, number=0, status=200):
    return Attempt(
        id=None,
        job_id=job.id,
        number=number,
        started_at=time.time(),
        duration_ms=1.5,
        url=job.url,
        request_headers={"x-signature": "sha256=00"},
        request_body=job.body,
        status=status,
        response_headers={"Content-Type": "application/json"},
        response_body=b"{}",
        error=None,
    )


def _other(store):
    """A second Store on the same database, as a second server process would open it."""
    return Store(store.path)


def test_jobs_round_trip_and_the_feed_reads_oldest_first(backend_store):
    store = backend_store
    jobs = [store.add_job(_job()) for _ in range(5)]
    got = store.get_job(jobs[0].id)
    assert got.body == jobs[0].body and got.auth.secret == "s3cr3t" and got.state == PENDING
    newest = store.query_jobs(limit=2)
    assert [j.id for _, j in newest] == [jobs[4].id, jobs[3].id]
    first_seq = store.job_seq(jobs[0].id)
    feed = store.query_jobs(after_seq=first_seq, limit=None)
    assert [j.id for _, j in feed] == [j.id for j in jobs[1:]]
    assert store.count_jobs() == 5 and store.count_jobs(PENDING) == 5 and store.count_by_state() == {PENDING: 5}
    assert store.feed_position() == (0, store.job_seq(jobs[4].id))


def test_two_servers_claiming_together_never_take_the_same_job(backend_store):
    store = backend_store
    ids = {store.add_job(_job()).id for _ in range(120)}
    other = _other(store)
    taken: dict[str, list[str]] = {"a": [], "b": []}

    def claim(s, owner):
        while True:
            got = s.claim_due(time.time(), limit=7, owner=owner, lease=30)
            if not got:
                return
            taken[owner] += [j.id for j in got]

    threads = [threading.Thread(target=claim, args=(s, o)) for s, o in ((store, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not set(taken["a"]) & set(taken["b"])
    assert sorted(taken["a"] + taken["b"]) == sorted(ids)
    assert store.count_jobs(DELIVERING) == 120
    other.close()


def test_a_lease_moves_a_job_only_once_it_runs_out_and_a_late_owner_records_nothing(backend_store):
    store = backend_store
    job = store.add_job(_job())
    [mine] = store.claim_due(time.time(), owner="a", lease=0.3)
    assert store.claim_due(time.time(), owner="b") == []  # a's lease is alive
    # not taken back; a shared database does not even count it as interrupted: another server is delivering it
    assert store.recover_interrupted() == ([] if store.shared else [job.id])
    assert store.get_job(job.id).state == DELIVERING
    time.sleep(0.35)
    [theirs] = store.claim_due(time.time(), owner="b", lease=30)
    assert theirs.id == job.id
    mine.state, mine.attempts_made = SUCCEEDED, 1
    with pytest.raises(LeaseLost):
        store.finish_attempt(mine, _attempt(mine), owner="a")
    theirs.state, theirs.attempts_made = SUCCEEDED, 1
    attempt = _attempt(theirs)
    store.finish_attempt(theirs, attempt, owner="b")
    assert attempt.id is not None and [a.number for a in store.attempts(job.id)] == [0]
    done = store.get_job(job.id)
    assert done.state == SUCCEEDED and done.auth.secret is None  # a finished job keeps no credentials


def test_release_renew_and_recover(backend_store):
    store = backend_store
    job = store.add_job(_job())
    [claimed] = store.claim_due(time.time(), owner="a", lease=0.2)
    assert store.renew_leases("a", [job.id], time.time() + 30) == 1
    time.sleep(0.25)
    assert store.claim_due(time.time(), owner="b") == []  # renewed
    assert store.release(claimed, time.time() + 60, owner="a")
    assert store.get_job(job.id).state == PENDING and store.next_due_at() > time.time() + 50
    later = time.time() + 61
    store.claim_due(later, owner="c", lease=0.5)
    assert store.recover_interrupted(now=later + 0.2) == ([] if store.shared else [job.id])
    assert store.get_job(job.id).state == DELIVERING
    assert store.recover_interrupted(now=later + 0.6) == [job.id]
    assert store.get_job(job.id).state == PENDING  # its lease ran out: back to pending, due now


def test_attempt_ids_grow_and_the_feed_of_attempts_follows_them(backend_store):
    store = backend_store
    store.add_job(_job())
    store.add_job(_job())
    for _ in range(2):
        [claimed] = store.claim_due(time.time(), owner="w", lease=30, limit=1)
        claimed.state, claimed.attempts_made = EXHAUSTED, 1
        store.finish_attempt(claimed, _attempt(claimed, status=500), owner="w")
    first, second = store.recent_attempts(0)
    assert first.id < second.id and store.recent_attempts(first.id) == [second]
    assert second.response_headers == {"Content-Type": "application/json"} and second.request_body_sha256
    assert store.feed_position()[0] == second.id


def test_the_feed_misses_no_job_when_servers_add_them_concurrently(backend_store):
    """A reader following `after_seq` while four writers on their own connections add jobs: it sees every job,
    in seq order (PostgreSQL: feed transactions commit in the order of their ids)."""
    store = backend_store
    writers = [_other(store) for _ in range(4)]
    done = threading.Event()
    seen: list[int] = []

    def write(s):
        for _ in range(40):
            s.add_job(_job())

    def read():
        reader = _other(store)
        cursor = 0
        while True:
            finished = done.is_set()
            for seq, _ in reader.query_jobs(after_seq=cursor, limit=None):
                seen.append(seq)
                cursor = seq
            if finished:
                return

    r = threading.Thread(target=read)
    r.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    r.join(30)
    assert len(seen) == 160 == len(set(seen)) and seen == sorted(seen)


def test_subscriptions_settings_and_firings(backend_store):
    store = backend_store
    sub = Subscription(
        id="sub-1",
        platform="accessrc",
        event="DELIVERY_REFUND_REQUESTED",
        url="http://127.0.0.1:9/h",
        auth=Auth("basic", username="u", password="p"),
        schedule=Schedule("interval", seconds=5.0),
        overrides={"x": 1},
    )
    store.add_subscription(sub)
    got = store.get_subscription("sub-1")
    assert got.auth.password == "p" and got.schedule.seconds == 5.0 and got.overrides == {"x": 1}
    got.paused = True
    store.save_subscription(got)
    assert store.list_subscriptions(active_only=True) == [] and len(store.list_subscriptions(event=sub.event)) == 1
    assert store.count_fired("sub-1", time.time()) == 0 and store.count_fired("sub-1", time.time()) == 1
    assert store.count_fired("nope", time.time()) == -1
    other = _other(store)
    due = 1_700_000_000.0
    assert [store.claim_firing("sub-1", due, time.time()), other.claim_firing("sub-1", due, time.time())] == [
        True,
        False,
    ]
    assert other.claim_firing("sub-1", due + 5, time.time())
    assert store.set_setting_once("admin", "h1") == "h1" and other.set_setting_once("admin", "h2") == "h1"
    store.put_setting("k", "v1")
    store.put_setting("k", "v2", drop=("admin",))
    assert other.setting("k") == "v2" and other.setting("admin") is None
    store.link_redelivery("j2", "j1")
    store.link_redelivery("j2", "j0")
    assert store.redelivery_of("j2") == "j0"
    assert store.delete_subscription("sub-1") and not store.delete_subscription("sub-1")
    other.close()


def test_calls_and_provider_objects(backend_store):
    store = backend_store
    job = store.add_job(_job())
    for i, path in enumerate(("/api/DeliveryRequest/Sync", "/api/Delivery/Sync", "/api/printQueue/x/download")):
        store.add_call(Call("POST", path, 200, 1000.0 + i, 2.0, platform="accessrc", body=b"{}" * 20000, job_id=job.id))
    calls = store.query_calls()
    assert [c.path for c in calls][0] == "/api/printQueue/x/download" and calls[0].id > calls[1].id
    assert calls[0].body_length == 40000 and len(calls[0].body) == 16 * 1024
    assert [c.path for c in store.query_calls(path="/api/Deli")] == ["/api/Delivery/Sync", "/api/DeliveryRequest/Sync"]
    assert len(store.query_calls(job_id=job.id, since=1001.0)) == 2
    assert [c.path for c in store.calls_after(calls[2].id, limit=1)] == ["/api/Delivery/Sync"]  # the feed: oldest first
    assert store.last_call_id() == calls[0].id and store.calls_after(calls[0].id) == []
    obj = ProviderObject("accessrc", "delivery_channel", "ch-1", "pending", {"name": "IBAN"}, due_at=5.0)
    assert store.add_provider_object(obj) and not store.add_provider_object(obj)
    decided = ProviderObject("accessrc", "delivery_channel", "ch-1", "Approved", {"name": "IBAN"})
    assert store.save_provider_object(decided, only_if_status="pending")
    assert not store.save_provider_object(decided, only_if_status="pending")  # one writer wins a decision
    store.save_provider_object(ProviderObject("accessrc", "delivery_channel", "ch-2", "pending"))
    got = store.get_provider_object("accessrc", "delivery_channel", "ch-1")
    assert got.status == "Approved" and got.data == {"name": "IBAN"}
    assert [o.id for o in store.list_provider_objects("accessrc", "delivery_channel", status="pending")] == ["ch-2"]


def test_ids_are_found_in_sent_bodies_and_bodies_that_are_not_json_are_skipped(backend_store):
    store = backend_store
    body = {"deliveryRequestId": "dr-1", "delivery": [{"deliveryId": "d-1"}, "x", {"deliveryId": 7}], "n": 5}
    sent = store.add_job(_job(event="DELIVERY_REQUEST_SENT", body=json.dumps(body).encode()))
    store.add_job(_job(event="DELIVERY_REQUEST_SENT", body=b"\xff not json"))
    unsent = store.add_job(_job(event="DELIVERY_REQUEST_SENT", body=json.dumps({"deliveryRequestId": "dr-2"}).encode()))
    for _ in range(2):
        [claimed] = store.claim_due(time.time(), owner="w", limit=1, lease=30)
        claimed.state, claimed.attempts_made = SUCCEEDED, 1
        store.finish_attempt(claimed, _attempt(claimed), owner="w")
    assert store.find_sent_job("DELIVERY_REQUEST_SENT", "deliveryRequestId", "dr-1").id == sent.id
    assert store.find_sent_job("DELIVERY_REQUEST_SENT", "deliveryRequestId", "dr-2") is None  # never sent
    assert store.find_sent_job("DELIVERY_REQUEST_SENT", "n", "5") is None  # a number is not the text "5"
    assert store.find_sent_job("DELIVERY_REQUEST_SENT", "deliveryId", "d-1", within="delivery").id == sent.id
    assert store.find_sent_job("DELIVERY_REQUEST_SENT", "deliveryId", "7", within="delivery") is None
    assert [(v, j.id) for v, j in store.sent_values("DELIVERY_REQUEST_SENT", "deliveryRequestId")] == [
        ("dr-1", sent.id)
    ]
    assert unsent.id != sent.id


def test_retention_deletes_finished_jobs_with_their_attempts(backend_store):
    store = backend_store
    old, kept = store.add_job(_job()), store.add_job(_job())
    for _ in range(2):
        [claimed] = store.claim_due(time.time(), owner="w", limit=1, lease=30)
        claimed.state, claimed.attempts_made, claimed.updated_at = SUCCEEDED, 1, time.time()
        if claimed.id == old.id:
            claimed.updated_at = 10.0
        store.finish_attempt(claimed, _attempt(claimed), owner="w")
    store.link_redelivery(old.id, kept.id)
    assert store.purge_finished(before=1000.0) == 1
    assert store.get_job(old.id) is None and store.attempts(old.id) == [] and store.redelivery_of(old.id) is None
    assert store.get_job(kept.id) is not None


def test_a_postgresql_database_is_installed_once_by_servers_starting_together(pg_url):
    opened: list = []
    errors: list = []

    def open_it():
        try:
            opened.append(Store(pg_url))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(s.migrated for s in opened) == [[], [], [], ["postgresql schema v1"]]
    assert all(s.shared for s in opened)
    for s in opened:
        s.close()
