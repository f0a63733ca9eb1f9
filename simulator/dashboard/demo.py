"""`accessrc-sim serve --demo`: the reference receiver runs in-process, on loopback, and the dashboard's samples
and a few ready-made subscriptions point at it, so a trainer shows the whole loop with nothing else installed.

One receiver server, one path per behaviour (each path is its own reference receiver):

| path | platform | checks | behaviour |
|---|---|---|---|
| /accredit | Accredit | X-Signature with the simulator's public key | accepts |
| /accredit-flaky | Accredit | the same | answers 500 to the first 2 attempts of each job: a retry |
| /accessrc | AccessRC | HMAC `x-signature` with DEMO_HMAC_SECRET | accepts |
| /accessrc-flaky | AccessRC | the same HMAC | answers 500 to the first 2 attempts of each job: a retry |
| /reachfive | ReachFive | Authorization == DEMO_AUTHORIZATION | accepts |

A forged signature (the send panel's "Forge" box) is answered 401 by /accredit and /accessrc.

One demo subscription is scheduled and active from the start (DEMO_SCHEDULE_SECONDS): the log shows life at once,
gently; the page says so and pauses or resumes it (POST /api/subscriptions/<id>/pause, …/resume).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from .. import platforms
from ..auth import Auth
from ..receiver import ReceiverConfig, WaitressThread, create_receiver
from ..subscriptions import Schedule, Subscription

DEMO_HMAC_SECRET = "demo-hmac-secret"
DEMO_AUTHORIZATION = "Bearer demo-reachfive-token"
FLAKY_FAILURES = 2
DEMO_SCHEDULE_SECONDS = 15.0  # one event every 15 s: life in the log, never a flood


@dataclass
class Target:
    id: str
    label: str
    platform: str
    path: str
    auth: Auth
    fail_first: int = 0
    default: bool = False

    def auth_json(self) -> dict:
        """The demo's own credentials, shown to the trainer: they are fixed demo values, not secrets."""
        if self.auth.kind == "hmac":
            return {"kind": "hmac", "secret": self.auth.secret}
        if self.auth.kind == "authorization":
            return {"kind": "authorization", "authorization": self.auth.authorization}
        return {"kind": self.auth.kind}


TARGETS = (
    Target("accredit", "Accredit receiver (RSA)", "accredit", "/accredit", Auth("rsa"), default=True),
    Target(
        "accredit-flaky",
        f"Accredit receiver failing {FLAKY_FAILURES}× first",
        "accredit",
        "/accredit-flaky",
        Auth("rsa"),
        fail_first=FLAKY_FAILURES,
    ),
    Target(
        "accessrc",
        "AccessRC receiver (HMAC)",
        "accessrc",
        "/accessrc",
        Auth("hmac", secret=DEMO_HMAC_SECRET),
        default=True,
    ),
    Target(
        "accessrc-flaky",
        f"AccessRC receiver failing {FLAKY_FAILURES}× first",
        "accessrc",
        "/accessrc-flaky",
        Auth("hmac", secret=DEMO_HMAC_SECRET),
        fail_first=FLAKY_FAILURES,
    ),
    Target(
        "reachfive",
        "ReachFive receiver",
        "reachfive",
        "/reachfive",
        Auth("authorization", authorization=DEMO_AUTHORIZATION),
        default=True,
    ),
)

# Ready-made subscriptions (marked meta.demo): fire them from the Subscriptions view. The scheduled one is active.
DEMO_SUBSCRIPTIONS = (
    ("accessrc", "DELIVERY_CHANNEL_STATUS_UPDATED", {"status": "Approved"}, None),
    ("accessrc-flaky", "DELIVERY_REQUEST_SENT", {}, None),
    ("accredit", "BadgeExportZipFile.Created", {}, Schedule("interval", seconds=DEMO_SCHEDULE_SECONDS)),
    ("reachfive", "END_JOB_NOTIFICATION", {"status": "SUCCESS"}, None),
)


def _not_found(environ, start_response):
    return NotFound()(environ, start_response)


@dataclass
class Demo:
    server: WaitressThread
    targets: tuple[Target, ...]
    received: dict[str, list] = field(default_factory=dict)
    scheduled: Subscription | None = None  # the demo subscription firing on its own schedule

    @property
    def url(self) -> str:
        return self.server.url

    def target_url(self, target_id: str) -> str:
        target = next(t for t in self.targets if t.id == target_id)
        return self.url + target.path + "/hook"

    def to_dict(self) -> dict:
        sub = self.scheduled
        return {
            "receiver": self.url,
            "schedule": None
            if sub is None or sub.schedule is None
            else {
                "subscription_id": sub.id,
                "event": sub.event,
                "seconds": sub.schedule.seconds,
                "target": next((t.label for t in self.targets if self.target_url(t.id) == sub.url), sub.url),
            },
            "scenario_vars": {"HMAC_SECRET": DEMO_HMAC_SECRET, "AUTHORIZATION": DEMO_AUTHORIZATION},
            "targets": [
                {
                    "id": t.id,
                    "label": t.label,
                    "platform": t.platform,
                    "url": self.target_url(t.id),
                    "auth": t.auth_json(),
                    "fail_first": t.fail_first,
                    "default": t.default,
                }
                for t in self.targets
            ],
        }

    def stop(self) -> None:
        self.server.stop()


def start_demo(app, port: int = 0, log=None) -> Demo:
    """Start the in-process receiver on 127.0.0.1, register it with the app, (re)create the demo subscriptions."""
    from ..services import EXTENSION
    from . import DEMO_EXTENSION

    services = app.extensions[EXTENSION]
    mounts, received = {}, {}
    for target in TARGETS:
        receiver = create_receiver(
            ReceiverConfig(
                target.platform, target.auth, services.keys.public_pem, fail_first=target.fail_first, log=log
            )
        )
        mounts[target.path] = receiver
        received[target.id] = receiver.extensions["received"]
    # on waitress, bounded as the server itself is (connections, idle time, bodies): it shares serve's process
    server = WaitressThread(DispatcherMiddleware(_not_found, mounts), host="127.0.0.1", port=port).start()
    demo = Demo(server, TARGETS, received)
    app.extensions[DEMO_EXTENSION] = demo
    demo.scheduled = _demo_subscriptions(services, demo)
    return demo


def _demo_subscriptions(services, demo: Demo) -> Subscription | None:
    """Replace the demo subscriptions of an earlier start (their receiver port is gone) with fresh ones; the
    scheduled one (returned) is active."""
    repo = services.subscriptions
    for sub in repo.list():
        if sub.meta.get("demo"):
            services.remove_subscription(sub)
    now = time.time()
    scheduled = None
    for target_id, event, overrides, schedule in DEMO_SUBSCRIPTIONS:
        target = next(t for t in demo.targets if t.id == target_id)
        if platforms.get(target.platform).one_subscription_per_event and repo.list(
            platform=target.platform, event=event
        ):
            continue  # the user's own AccessRC subscription (one per event type) stays; no demo beside it
        sub = Subscription(
            target.platform,
            event,
            demo.target_url(target_id),
            target.auth,
            overrides=dict(overrides),
            schedule=schedule,
            meta={"demo": True},
        )
        services.save_subscription(sub, new=True, now=now)
        if schedule is not None:
            scheduled = sub
    return scheduled


def serve_demo(app, dashboard_url: str, echo, port: int = 0) -> Demo:
    """The `serve --demo` hook: start the receivers (on `port`, 0 for any free one), fire the scheduled demo
    subscription once at once, and tell the trainer where everything is."""
    demo = start_demo(app, port=port)
    echo(f"demo: reference receivers on {demo.url} — " + ", ".join(f"{t.path}/hook ({t.label})" for t in demo.targets))
    echo(
        f"demo: open {dashboard_url} (log in with the dashboard link above) to send events, watch deliveries, "
        "fire the demo subscriptions"
    )
    sub = demo.scheduled
    if sub is not None and sub.schedule is not None:
        from ..services import EXTENSION

        app.extensions[EXTENSION].fire(sub, source="schedule")  # life in the log at once, not in 15 s
        echo(
            f"demo: {sub.event} fires every {sub.schedule.seconds:g} s to the demo receiver; pause it on the "
            f"dashboard (Delivery log) or: POST /api/subscriptions/{sub.id}/pause"
        )
    return demo
