"""The trainer dashboard: one page at `/` over the simulator's JSON API, plus the few routes the page needs that
the API does not offer (preset payloads, and a send of an edited body or a forged signature).

Every asset is in this package (no CDN). The page never carries the admin key: its calls ride on a session
(simulator.api.session) opened by the login URL `serve` prints, or by pasting the admin key into the page's form.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request

from .. import __version__, catalogue, delivery
from ..api import session as sessions
from ..api.access import services
from ..api.errors import ApiError, bad_request, success
from ..api.inputs import (
    event_spec,
    json_body,
    optional_delays,
    optional_number,
    optional_profile,
    platform_auth,
    query_int,
    reject_unknown,
    require_string,
    require_url,
)
from ..api.stream import event_stream
from ..auth import Auth
from ..delivery import DeliveryError
from ..scenarios import faults
from . import presets

bp = Blueprint(
    "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/dashboard/static"
)

DEMO_EXTENSION = "accessrc_sim_demo"
SOURCE_DASHBOARD, SOURCE_FORGED = "dashboard", "dashboard:forged-signature"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:  # 127.0.0.1:8080, localhost:8080
        host = host.rsplit(":", 1)[0]
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_without_key() -> bool:
    """`serve --no-auth-local`: a browser on this machine asking by a loopback name gets a session without a key.

    Loopback peer: nobody on the network gets one. Loopback Host header: a web page that rebinds its own DNS name
    to 127.0.0.1 does not either (its requests carry its own name). Any local account does, hence opt-in only.
    """
    return (
        bool(current_app.config.get("NO_AUTH_LOCAL"))
        and _is_loopback_host(request.remote_addr)
        and _is_loopback_host(request.host)
    )


def _routes() -> dict:
    return {
        "jobs": "/api/jobs",
        "job": "/api/jobs/{id}",
        "redeliver": "/api/jobs/{id}/redeliver",
        "stream": "/dashboard/api/stream",
        "subscriptions": "/api/subscriptions",
        "subscription": "/api/subscriptions/{id}",
        "sub_fire": "/api/subscriptions/{id}/fire",
        "sub_pause": "/api/subscriptions/{id}/pause",
        "sub_resume": "/api/subscriptions/{id}/resume",
        "sample": "/dashboard/api/sample",
        "send": "/dashboard/api/send",
        "scenarios": _scenario_routes(),
        "readiness": "/dashboard/api/readiness",
        "login": "/dashboard/login",
        "calls": "/api/calls",
        "reviews": "/api/reviews",
        "review": "/api/reviews/{id}",
    }


def _scenario_routes() -> dict | None:
    """The scenario runner's routes, when the app has them."""
    rules = {r.rule for r in current_app.url_map.iter_rules()}
    if "/api/scenarios" not in rules:
        return None
    return {"list": "/api/scenarios", "runs": "/api/scenario-runs", "run": "/api/scenario-runs/{id}"}


def _review_mode() -> dict:
    """How a proposed delivery channel is decided (serve --review): the page offers Approve / Reject under manual."""
    settings = services().settings
    return {"mode": settings.review_mode, "delay": settings.review_delay}


@lru_cache(maxsize=1)
def _catalogue_json() -> list[dict]:
    return [s.to_dict() for s in catalogue.EVENTS]


def _page_headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # a login URL never leaves in a Referer
    return response


@bp.get("/")
@bp.get("/dashboard")
def index():
    """The page. `?token=` (the one-time login URL `serve` prints) opens a session and redirects to the page
    without it; the same link opened again opens nothing and says so."""
    login_error = None
    if "token" in request.args:
        redeemed = sessions.sessions().redeem(request.args.get("token"))
        if redeemed == "ok":
            rest = urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "token"])
            return _page_headers(sessions.start_session(redirect(request.path + (f"?{rest}" if rest else ""), 303)))
        login_error = (
            "This login link has already been used: a login link opens one browser session, once. To log in "
            "again, paste the admin key below (ACCESSRC_SIM_API_KEY, or the key serve printed when it made it)."
            if redeemed == "used"
            else "This login link was made under an admin key that has since been replaced (accessrc-sim "
            "admin-key --rotate), which ends every session and unused link: paste the new admin key below."
            if redeemed == "rotated"
            else "This login link is not (or no longer) valid: open the login URL that accessrc-sim serve "
            "printed at its last start, or paste the admin key."
        )
    opened = not sessions.has_session() and local_without_key()
    demo = current_app.extensions.get(DEMO_EXTENSION)
    boot = {
        "version": __version__,
        "session": opened or sessions.has_session(),
        "login_error": login_error,
        "routes": _routes(),
        "events": _catalogue_json(),
        "presets": [p.to_dict() for p in presets.PRESETS],
        "demo": demo.to_dict() if demo else None,
        "review": _review_mode(),
    }
    response = current_app.make_response(render_template("dashboard/index.html", boot=boot, version=__version__))
    if opened:
        sessions.start_session(response)
    return _page_headers(response)


@bp.post("/dashboard/login")
def login():
    """The page's form: the admin key (JSON `{"key": …}`) for a session cookie; the key is not kept by the page."""
    data = json_body()
    reject_unknown(data, ("key",))
    if not services().check_api_key(data.get("key") if isinstance(data.get("key"), str) else None):
        raise ApiError(401, "wrong admin key", "key")
    return _page_headers(sessions.start_session(success({"session": True})))


@bp.get("/dashboard/api/sample")
def sample():
    """A fresh payload for an event, shaped by a preset (and the list size the panel asks for)."""
    name = request.args.get("event") or ""
    preset_id = request.args.get("preset") or None
    spec = event_spec(name)
    count = query_int("count", None, 0, 500)
    if count is not None and spec.count_of is None:
        raise bad_request(f"{spec.name} has no list to size with count", "count")
    seed = query_int("seed")
    try:
        preset = presets.get_preset(preset_id) if preset_id else presets.Preset("random", spec.name, "Random")
        if preset.event != spec.name:
            raise bad_request(f"preset {preset.id} is for {preset.event}, not {spec.name}", "preset")
        payload = presets.generate(preset, count=count, seed=seed)
    except presets.PresetError as exc:
        raise bad_request(str(exc), "preset") from exc
    except catalogue.CatalogueError as exc:
        raise bad_request("; ".join(exc.problems) or str(exc), "count") from exc
    return success({"event": spec.name, "preset": preset.id, "payload": payload})


SEND_FIELDS = ("event", "url", "auth", "payload", "forge_signature", "retry_delays", "timeout", "profile")


@bp.post("/dashboard/api/send")
def send():
    """Send exactly the (possibly edited) payload: the panel's one-off send. `forge_signature` replaces the
    signature or credential with a wrong one, to show a receiver rejecting a forgery."""
    data = json_body()
    reject_unknown(data, SEND_FIELDS)
    name = require_string(data, "event")
    spec = event_spec(name)
    url = require_url(data, "url")
    if "payload" not in data:
        raise ApiError(400, "payload is required (the JSON body to send)", "payload")
    body = catalogue.body_bytes(data["payload"])
    auth = platform_auth(spec.platform, data.get("auth"))  # each platform's own terms, as the API takes it
    forge = data.get("forge_signature", False)
    if not isinstance(forge, bool):
        raise bad_request("forge_signature must be true or false", "forge_signature")
    headers = forged_headers(auth, body) if forge else {}
    timeout = optional_number(data, "timeout")
    profile = optional_profile(data, spec.platform)
    try:
        job = delivery.new_job(
            spec.name,
            spec.platform,
            url,
            body,
            auth,
            delays=_delays(data),
            timeout=timeout if timeout is not None else services().settings.timeout,
            source=SOURCE_FORGED if forge else SOURCE_DASHBOARD,
            headers=headers,
            profile=profile,
        )
    except DeliveryError as exc:
        field = "timeout" if "timeout" in str(exc) else "retry_delays" if "retr" in str(exc) else "url"
        raise bad_request(str(exc), field) from exc
    services().add(job)
    from ..api.jobs import job_json, job_seq

    return success(job_json(job, job_seq(job.id)), 201)


def _delays(data: dict):
    delays = optional_delays(data)
    return delays if delays is not None else services().settings.retry_delays


def forged_headers(auth: Auth, body: bytes) -> dict[str, str]:
    """Headers that look right but do not authenticate `body` (the job headers override the real ones): someone
    else's well-formed credential, made by the code the `wrong_key` fault sends (simulator.scenarios.faults)."""
    try:
        return faults.foreign_credential(auth, body)[0]
    except faults.FaultError as exc:
        raise bad_request(
            "nothing to forge: this delivery has no signature or credential (auth none)", "forge_signature"
        ) from exc


@bp.get("/dashboard/api/stream")
def stream():
    """Server-sent events for the live log (simulator.api.stream), each record without its bodies: the page
    fetches the whole job when it is opened."""
    return event_stream(_light)


def _light(record: dict) -> dict:
    """A log row without the bodies: the page fetches the whole job when it is opened."""
    return {k: v for k, v in record.items() if k not in ("body", "request_body", "response_body")}
