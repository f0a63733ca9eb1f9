"""Fresh events for load mode: payloads from pooled Faker values, and one event built (job id, body, headers).

Shared by the worker threads of a load run and by its signing processes (simulator.load.signers), so both
build an event the same way.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from faker import Faker

from .. import catalogue, delivery
from ..catalogue.base import GenContext
from ..models import Job, new_job_id
from ..signing import KeyPair

POOL_SIZE = 512  # values per pooled Faker call
VALIDATED_UP_FRONT = 20  # payloads checked against the event schema before the clock starts


class LoadError(ValueError):
    """A load setting out of bounds, or an event whose generated payloads break its schema."""


class FakerPools:
    """Values of Faker calls generated once per (method, arguments), shared read-only by every worker."""

    def __init__(self, seed: int | None = None, size: int = POOL_SIZE):
        self.size = size
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed if seed is not None else random.getrandbits(64))
        self.pools: dict[tuple, list] = {}
        self.lock = threading.Lock()

    def pool(self, name: str, args: tuple, kwargs: dict) -> list:
        key = (name, args, tuple(sorted(kwargs.items())))
        values = self.pools.get(key)
        if values is None:
            with self.lock:
                values = self.pools.get(key)
                if values is None:
                    method = getattr(self.fake, name)
                    values = self.pools[key] = [method(*args, **kwargs) for _ in range(self.size)]
        return values


class PooledFaker:
    """Duck-types the Faker a factory calls (`ctx.fake.name()`), drawing from FakerPools with its own RNG."""

    def __init__(self, pools: FakerPools, rng: random.Random):
        self._pools = pools
        self._rng = rng

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def draw(*args, **kwargs):
            return self._rng.choice(self._pools.pool(name, args, kwargs))

        return draw


class PayloadSource:
    """Fresh payloads of one event: new ids (from the RNG), timestamps of now, Faker fields from the pools."""

    def __init__(
        self,
        event: str,
        overrides: dict | None = None,
        count: int | None = None,
        force: bool = False,
        pools: FakerPools | None = None,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.spec = catalogue.get_event(event)
        self.overrides = dict(overrides or {})
        self.count = count
        self.force = force
        self.pools = pools or FakerPools()
        self.rng = rng or random.Random()
        self.fake = PooledFaker(self.pools, self.rng)
        self.now = now

    def payload(self) -> dict:
        ctx = GenContext(fake=self.fake, rng=self.rng, now=self.now(), hints=self.overrides, count=self.count)
        payload = self.spec.factory(ctx)
        return catalogue.apply_overrides(payload, self.overrides, force=self.force)

    def body(self) -> bytes:
        return catalogue.body_bytes(self.payload())

    def worker(self, index: int, seed: int | None = None) -> PayloadSource:
        """A source for one worker thread: same pools, its own RNG (seeded from `seed` and `index` if given)."""
        rng = random.Random(None if seed is None else seed * 1_000_003 + index)
        return PayloadSource(self.spec.name, self.overrides, self.count, self.force, self.pools, rng, self.now)

    def check(self, n: int = VALIDATED_UP_FRONT) -> None:
        """Generate `n` payloads and refuse the run (LoadError) if any breaks the event's schema."""
        if self.force:
            return
        for _ in range(n):
            problems = catalogue.validate(self.spec, self.payload())
            if problems:
                raise LoadError(f"generated {self.spec.name} payloads break its schema: " + "; ".join(problems[:3]))


class Built(NamedTuple):
    """One event ready to send, or why it could not be built (`error`, then body and headers are empty)."""

    job_id: str
    body: bytes
    headers: dict
    error: str | None = None


def build_event(source: PayloadSource, template: Job, keys: KeyPair | None) -> Built:
    """A fresh payload of `source`, its own X-JobId, signed as the template's platform signs (attempt 0)."""
    job = copy.copy(template)  # a shallow copy: a quarter of dataclasses.replace's cost (no __init__ again)
    job.id = new_job_id()
    try:
        job.body = source.body()
        return Built(job.id, job.body, delivery.request_headers(job, 0, keys))
    except Exception as exc:  # e.g. an override that fits only some payloads: counted by the caller, never silent
        return Built(job.id, b"", {}, f"{type(exc).__name__}: {exc}")
