"""compose.yaml, without a Docker engine (issue 16): its structure, and a replay of what it runs — its replicas'
command and environment, twice, on a new database of a real PostgreSQL server (its `db` service's stand-in) and
one keys folder (its `keys` volume) — checked as an operator would: both healthy, a delivery sent through one is
seen, delivered, through the other, and in the other's delivery log stream."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import requests
import yaml
from sim_helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))


def test_postgresql_and_two_replicas_of_the_image_on_it():
    db, sim = COMPOSE["services"]["db"], COMPOSE["services"]["sim"]
    assert re.fullmatch(r"postgres:\d+(-\w+)?", db["image"])  # a pinned major version
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert sim["build"] == "." and sim["deploy"]["replicas"] == 2
    assert sim["depends_on"] == {"db": {"condition": "service_healthy"}}
    env = sim["environment"]
    url = env["ACCESSRC_SIM_DB"]
    assert url.startswith("postgresql://") and "@db:5432/" in url
    assert url.rsplit("/", 1)[1] == db["environment"]["POSTGRES_DB"]
    assert ":?" in env["ACCESSRC_SIM_API_KEY"]  # required: every replica must accept the same admin key
    assert "keys:/data/keys" in sim["volumes"] and set(COMPOSE["volumes"]) == {"pgdata", "keys"}
    low, high = re.fullmatch(r"127\.0\.0\.1:(\d+)-(\d+):8080", sim["ports"][0]).groups()
    assert int(high) - int(low) + 1 == sim["deploy"]["replicas"]  # one loopback port per replica


def test_the_replicas_command_is_the_images(tmp_path):
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert COMPOSE["services"]["sim"]["command"] == yaml.safe_load(cmd)
    assert '".[postgresql]"' in dockerfile  # the image can open a postgresql:// database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replay_two_replicas_share_one_database(tmp_path, pg_url, receiver):
    sim = COMPOSE["services"]["sim"]
    target = receiver("accessrc")
    keys = tmp_path / "keys-volume"
    key = "compose-replay-admin-key"
    procs, urls = [], []
    try:
        for i in range(2):
            port = _free_port()
            argv = [shutil.which(sim["command"][0]), *sim["command"][1:]]
            argv[argv.index("--host") + 1] = "127.0.0.1"  # the replay stays on loopback
            argv[argv.index("--port") + 1] = str(port)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSRC_SIM_")}
            env.update(
                ACCESSRC_SIM_HOME=str(tmp_path / f"data{i}"),  # each container's own /data ...
                ACCESSRC_SIM_KEYS_DIR=str(keys),  # ... with the shared keys volume
                ACCESSRC_SIM_DB=pg_url,  # the db service
                ACCESSRC_SIM_API_KEY=key,
            )
            log = open(tmp_path / f"replica{i}.log", "wb")
            procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_until(lambda url=url: _healthy(url), 60, what=f"{url}/healthz")
        streamed: list[str] = []  # the delivery log of replica 2, followed while replica 1 takes the job

        def follow():
            with requests.get(
                urls[1] + "/api/stream?max_seconds=20", headers={"x-api-key": key}, stream=True, timeout=30
            ) as resp:
                for line in resp.iter_lines(decode_unicode=True):
                    streamed.append(line)
                    if '"state": "succeeded"' in line:
                        return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        wait_until(lambda: streamed, 10, what="the stream's first event")
        sent = requests.post(
            urls[0] + "/api/send",
            headers={"x-api-key": key},
            json={"event": "DELIVERY_REFUND_REQUESTED", "url": target.url + "/h"},
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        job_id = sent.json()["data"]["id"]
        seen = wait_until(
            lambda: _job(urls[1], key, job_id).get("state") == "succeeded" and _job(urls[1], key, job_id),
            30,
            what="the job, delivered, seen through the other replica",
        )
        assert seen["id"] == job_id and len(target.received) == 1
        follower.join(20)
        assert any(job_id in line and '"state": "succeeded"' in line for line in streamed), streamed[-5:]
        logs = "".join((tmp_path / f"replica{i}.log").read_text(errors="replace") for i in range(2))
        assert "sim@" in logs and key not in logs  # the database named, the admin key never printed
        # what a replica keeps in its own /data is nothing but the shared keys: no SQLite file beside them
        assert [p.name for i in range(2) for p in (tmp_path / f"data{i}").rglob("*.db")] == []
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _job(url: str, key: str, job_id: str) -> dict:
    resp = requests.get(f"{url}/api/jobs/{job_id}", headers={"x-api-key": key}, timeout=5)
    return resp.json()["data"] if resp.status_code == 200 else {}
