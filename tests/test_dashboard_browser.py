"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright), against the real server
on waitress with the demo receivers, all on 127.0.0.1."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from sim_helpers import wait_until

from simulator.app import create_app
from simulator.dashboard.demo import start_demo

pytestmark = pytest.mark.slow  # a real browser: about a minute for the module

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "browser-test-key"
XKEY = {"x-api-key": API_KEY}
DELAYS = (0.3, 0.3, 0.3, 0.3, 0.3)

if not Path(CHROMIUM).exists():  # .ci/run installs it; say so loudly rather than pass quietly
    pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium", pytrace=False)


@pytest.fixture(scope="module")
def sim(tmp_path_factory, keys_dir):
    """The simulator with its demo receivers, on waitress on a random loopback port."""
    tmp = tmp_path_factory.mktemp("dash")
    app = create_app(
        {
            "DB_PATH": str(tmp / "sim.db"),
            "KEYS_DIR": str(keys_dir),
            "API_KEY": API_KEY,
            "RETRY_DELAYS": DELAYS,
            "TIMEOUT": 5,
        }
    )
    server, demo = _serve(app)
    yield app
    services = app.extensions["accessrc_sim"]
    services.stopping.set()
    time.sleep(0.5)
    server.close()
    demo.stop()
    services.stop(5)


def _serve(app) -> tuple:
    """`app` on waitress as `serve` runs it (the key checked after the headers) on a random loopback port, with its
    demo receivers; (server, demo)."""
    from simulator.api.edge import create_guarded_server

    demo = start_demo(app)
    server = create_guarded_server(app, host="127.0.0.1", port=0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    app.base_url = f"http://127.0.0.1:{server.effective_port}"
    sessions = app.extensions["accessrc_sim_sessions"]
    app.new_login_url = lambda: f"{app.base_url}/?token={sessions.new_login_token()}"  # one-time, as serve prints
    app.demo = demo
    return server, demo


@pytest.fixture(scope="module")
def manual_sim(tmp_path_factory, keys_dir):
    """A second simulator, as `serve --review manual`: the trainer decides each proposed delivery channel."""
    tmp = tmp_path_factory.mktemp("manual")
    app = create_app(
        {
            "DB_PATH": str(tmp / "sim.db"),
            "KEYS_DIR": str(keys_dir),
            "API_KEY": API_KEY,
            "RETRY_DELAYS": DELAYS,
            "TIMEOUT": 5,
            "REVIEW": "manual",
        }
    )
    server, demo = _serve(app)
    requests.post(f"{app.base_url}/api/subscriptions/{demo.scheduled.id}/pause", headers=XKEY, timeout=10)
    yield app
    services = app.extensions["accessrc_sim"]
    services.stopping.set()
    time.sleep(0.5)
    server.close()
    demo.stop()
    services.stop(5)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, sim):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.set_default_timeout(15_000)
    yield page
    context.close()


def open_dashboard(page, sim, view="deliveries"):
    """Log in through a one-time login URL as `serve` prints; it lands on the page without the token."""
    sim.last_login_url = sim.new_login_url()
    page.goto(f"{sim.last_login_url}#{view}")
    expect(page).to_have_url(f"{sim.base_url}/#{view}")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads


def send_from_panel(page, platform=None, event=None, preset=None, target=None, forge=False, profile=None):
    page.click("nav.tabs a[data-view=send]")
    if platform:
        page.select_option("#send-platform", platform)
    if event:
        page.select_option("#send-event", event)
    if preset:
        page.select_option("#send-preset", preset)
    if target:
        page.click(f"#send-demo-targets button[data-target='{target}']")
    expect(page.locator("#send-body")).not_to_have_value("")
    page.wait_for_function(
        "() => { try { JSON.parse(document.querySelector('#send-body').value); return true; }"
        " catch (e) { return false; } }"
    )
    if forge:
        page.check("#send-forge")
    if profile:
        page.select_option("#send-profile", profile)
    page.click("#send-submit")
    link = page.locator("#send-result a[href^='#job/']")
    expect(link).to_be_visible()
    return link.get_attribute("href").split("/", 1)[1]


def row(page, job_id):
    return page.locator(f"#jobs-body tr[data-job='{job_id}']")


def test_page_loads_offline_and_goes_live(page, sim):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    open_dashboard(page, sim)
    assert requested and all(url.startswith(sim.base_url) for url in requested), requested
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Deliveries")
    expect(page.locator("#key-panel")).to_be_hidden()  # logged in through the login URL
    expect(page.locator("#key-button")).to_be_hidden()
    assert API_KEY not in page.content() and sim.last_login_url not in page.content()
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script on the page can read the session
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1  # a session cookie
    assert page.errors == []


def test_event_sent_from_the_panel_appears_and_turns_green_without_a_reload(page, sim):
    open_dashboard(page, sim)
    job_id = send_from_panel(
        page,
        "accessrc",
        "DELIVERY_CHANNEL_STATUS_UPDATED",
        "channel-rejected-delivery-channel-update",
        target="accessrc",
    )
    page.click("nav.tabs a[data-view=deliveries]")
    line = row(page, job_id)
    expect(line).to_have_attribute("data-state", "succeeded")
    expect(line.locator(".status")).to_have_text("✔Delivered")
    expect(line).to_contain_text("DELIVERY_CHANNEL_STATUS_UPDATED")
    expect(line).to_contain_text("AccessRC")
    expect(line).to_contain_text("✔ 200")
    expect(line.locator("td.attempts")).to_have_text("1 of 6")
    assert page.evaluate("window.__sameDocument") is True
    assert page.errors == []


def test_a_job_opens_with_body_attempts_masked_headers_and_how_to_verify(page, sim):
    open_dashboard(page, sim)
    job_id = send_from_panel(page, "accessrc", "APPLICATIONS_IMPORT_RESULT", "import-partial", target="accessrc")
    page.click("nav.tabs a[data-view=deliveries]")
    expect(row(page, job_id)).to_have_attribute("data-state", "succeeded")
    row(page, job_id).click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    body = json.loads(page.locator("#detail-json").inner_text())
    assert body["status"] == "PARTIAL_SUCCESS" and body["summary"] == {
        "totalRecords": 120,
        "successCount": 115,
        "failureCount": 5,
    }
    attempts = page.locator("#attempt-list > li")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("Attempt 0")
    expect(attempts.first.locator("table.headers")).not_to_contain_text("X-JobId")  # AccessRC documents none
    expect(attempts.first).to_contain_text("✔ 200")
    expect(attempts.first).to_contain_text("Callback successfully received")
    expect(detail).to_contain_text("x-signature")
    expect(detail).to_contain_text("openssl dgst -sha256 -hmac")
    expect(detail).to_contain_text(job_id)
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()


def test_credentials_are_masked_in_the_headers_shown(page, sim):
    open_dashboard(page, sim)
    page.click("nav.tabs a[data-view=send]")
    page.click("#send-demo-targets button[data-target='accessrc']")
    page.check("input[name=auth-kind][value=header]")
    page.fill("#auth-header-name", "X-API-Key")
    page.fill("#auth-header-value", "very-secret-provider-key")
    job_id = send_from_panel(page)
    page.goto(f"{sim.base_url}/#job/{job_id}")
    expect(page.locator("#attempt-list > li").first).to_contain_text("401")  # the demo receiver wants HMAC
    expect(page.locator("#detail")).to_contain_text("*** (masked)")
    assert "very-secret-provider-key" not in page.content()


def test_a_retry_after_a_failure_and_a_rejected_forgery(page, sim):
    open_dashboard(page, sim)
    flaky = send_from_panel(page, event="DELIVERY_REQUEST_SENT", target="accessrc-flaky")
    forged = send_from_panel(page, "accredit", "BadgeExportZipFile.Created", target="accredit", forge=True)
    page.click("nav.tabs a[data-view=deliveries]")
    expect(row(page, flaky)).to_have_attribute("data-state", "succeeded")
    expect(row(page, flaky).locator("td.attempts")).to_have_text("3 of 6")
    expect(row(page, forged)).to_have_attribute("data-state", "exhausted")
    expect(row(page, forged).locator(".status")).to_have_text("✖Failed")
    expect(row(page, forged)).to_contain_text("✖ 401")
    row(page, flaky).click()
    attempts = page.locator("#attempt-list > li")
    expect(attempts).to_have_count(3)
    assert [attempts.nth(i).get_attribute("data-ok") for i in range(3)] == ["no", "no", "yes"]
    expect(attempts.nth(0)).to_contain_text("500")
    page.goto(f"{sim.base_url}/#job/{forged}")
    expect(page.locator("#attempt-list > li")).to_have_count(6)
    expect(page.locator("#attempt-list > li").first).to_contain_text("Verification failed")
    expect(page.locator("#detail")).to_contain_text("forged signature on purpose")


def test_redeliver_sends_the_same_body_with_the_same_job_id(page, sim):
    open_dashboard(page, sim)
    # A one-off send with a secret keeps it only until it finishes (issue 14, item 12): no redelivery, said so.
    hmac_job = send_from_panel(
        page,
        "accessrc",
        "DELIVERY_CHANNEL_STATUS_UPDATED",
        "channel-approved-delivery-channel-update-status",
        target="accessrc",
    )
    page.click("nav.tabs a[data-view=deliveries]")
    expect(row(page, hmac_job)).to_have_attribute("data-state", "succeeded")
    row(page, hmac_job).click()
    expect(page.locator("#detail")).to_contain_text("cleared when the job finished")
    page.click("#redeliver")
    expect(page.locator("#toast")).to_contain_text("credentials were cleared")
    # Accredit signs with the key pair, which a job never holds: its resend works as the platforms' does.
    first = send_from_panel(page, "accredit", "BadgeExportZipFile.Created", target="accredit")
    page.click("nav.tabs a[data-view=deliveries]")
    expect(row(page, first)).to_have_attribute("data-state", "succeeded")
    row(page, first).click()
    expect(page.locator("#detail-json")).to_contain_text("BadgeExportZipFile.Created")
    original = page.locator("#detail-json").inner_text()
    page.click("#redeliver")
    expect(page).not_to_have_url(f"{sim.base_url}/#job/{first}")
    again = page.url.rsplit("/", 1)[1]
    expect(row(page, again)).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#detail")).to_contain_text("Redelivery of")
    expect(page.locator("#detail-json")).to_have_text(original)
    headers = page.locator("#attempt-list > li").first.locator("table.headers")
    expect(headers).to_contain_text(f"X-JobId{first}")  # the original job's id, as the platforms resend
    assert sim.demo.received["accredit"][-1].job_id == first


def test_copy_curl_reproduces_the_signed_request(page, sim):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=sim.base_url)
    open_dashboard(page, sim)
    job_id = send_from_panel(page, "accessrc", "DELIVERY_REFUND_REQUESTED", target="accessrc")
    page.goto(f"{sim.base_url}/#job/{job_id}")
    expect(page.locator("#attempt-list > li")).to_have_count(1)
    page.click("#copy-curl")
    expect(page.locator("#toast")).to_contain_text("curl command copied")
    command = page.evaluate("navigator.clipboard.readText()")
    assert command.startswith("curl -sS -X POST 'http://127.0.0.1:")
    before = len(sim.demo.received["accessrc"])
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=20)
    assert json.loads(out.stdout)["status"] == "success", out
    replay = sim.demo.received["accessrc"][before]
    original = sim.demo.received["accessrc"][before - 1]
    assert replay.status == 200 and replay.body == original.body  # HMAC verified on the same bytes
    assert replay.job_id is None  # AccessRC's documented profile: no X-JobId to replay
    page.click("#copy-body")
    body = page.evaluate("navigator.clipboard.readText()")
    assert json.loads(body) == json.loads(page.locator("#detail-json").inner_text())


def test_subscriptions_create_fire_schedule_pause_resume_delete(page, sim):
    open_dashboard(page, sim, "subscriptions")
    page.select_option("#sub-platform", "accessrc")
    page.select_option("#sub-event", "DELIVERY_REFUND_REQUESTED")
    page.fill("#sub-url", sim.demo.target_url("accessrc"))
    page.check("input[name=sub-auth-kind][value=hmac]")
    page.fill("#sub-secret", "demo-hmac-secret")
    page.check("input[name=sub-schedule][value=interval]")
    page.fill("#sub-interval", "3600")
    page.click("#sub-form button[type=submit]")
    expect(page.locator("#sub-result")).to_contain_text("Subscribed: DELIVERY_REFUND_REQUESTED")
    sub = page.locator("#subs-body tr", has_text="DELIVERY_REFUND_REQUESTED")
    expect(sub).to_contain_text("every 3600 s")
    expect(sub.locator(".status")).to_have_text("▶Scheduled")
    sub.get_by_role("button", name="➤ Fire now").click()
    expect(page.locator("#toast")).to_contain_text("Fired: job")
    page.click("nav.tabs a[data-view=deliveries]")
    fired = page.locator("#jobs-body tr", has_text="DELIVERY_REFUND_REQUESTED").first
    expect(fired).to_have_attribute("data-state", "succeeded")
    page.click("nav.tabs a[data-view=subscriptions]")
    sub.get_by_role("button", name="‖ Pause").click()
    expect(sub.locator(".status")).to_have_text("‖Paused")
    sub.get_by_role("button", name="▶ Resume").click()
    expect(sub.locator(".status")).to_have_text("▶Scheduled")
    sub.get_by_role("button", name="◷ Schedule").click()
    page.select_option("tr.schedule-editor select", "cron")
    page.fill("tr.schedule-editor input", "not a cron")
    page.click("tr.schedule-editor button[type=submit]")
    expect(page.locator("tr.schedule-editor")).to_contain_text("bad cron expression")
    page.fill("tr.schedule-editor input", "*/5 * * * *")
    page.click("tr.schedule-editor button[type=submit]")
    expect(sub).to_contain_text("cron */5 * * * *")
    page.once("dialog", lambda dialog: dialog.accept())
    sub.get_by_role("button", name="✕ Delete").click()
    expect(sub).to_have_count(0)
    page.select_option("#sub-platform", "accredit")
    page.select_option("#sub-event", "BadgeExportZipFile.Created")
    page.fill("#sub-url", sim.demo.target_url("accredit"))
    page.fill("#sub-tenant", "tenant-42")
    page.check("input[name=sub-schedule][value=none]")
    page.click("#sub-form button[type=submit]")
    expect(page.locator("#sub-result")).to_contain_text("Subscribed: BadgeExportZipFile.Created")
    session = requests.Session()
    session.trust_env = False
    listed = session.get(
        sim.base_url + "/api/webhookSubscription", timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}
    ).json()
    assert any(s["tenantId"] == "tenant-42" for s in listed)


def test_without_a_session_the_page_asks_to_log_in_and_a_pasted_key_opens_one(page, sim):
    """Issue 14, item 1: a loopback browser used to get the key in the page; now it gets the log-in form."""
    page.goto(f"{sim.base_url}/?token=an-old-token#deliveries")
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.locator("#key-panel")).to_contain_text("Open the login URL that accessrc-sim serve printed")
    expect(page.locator("#key-error")).to_contain_text("not (or no longer) valid")
    expect(page.locator("#key-button")).to_be_visible()
    expect(page.locator("#live")).not_to_have_attribute("data-state", "live")
    assert API_KEY not in page.content()
    page.fill("#key-input", "wrong-key")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#key-error")).to_contain_text("refused")
    page.fill("#key-input", API_KEY)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator("#key-panel")).to_be_hidden()
    page.goto(f"{sim.base_url}/#deliveries")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")  # the session cookie, not the key
    expect(page.locator("#key-panel")).to_be_hidden()
    stored = page.evaluate("JSON.stringify([document.cookie, {...sessionStorage}, {...localStorage}])")
    assert API_KEY not in stored and API_KEY not in page.content()


def test_phone_width_and_keyboard(browser, sim):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    schedule = f"{sim.base_url}/api/subscriptions/{sim.demo.scheduled.id}"
    requests.post(schedule + "/pause", headers=XKEY, timeout=10)  # the newest row stays the one sent here
    try:
        open_dashboard(page, sim)
        job_id = send_from_panel(page, "accredit", "Entity.Event", target="accredit")
        page.click("nav.tabs a[data-view=deliveries]")
        expect(row(page, job_id)).to_have_attribute("data-state", "succeeded")
        for view in ("deliveries", "send", "subscriptions", "loop"):
            page.click(f"nav.tabs a[data-view={view}]")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{view} scrolls sideways by {overflow}px on a phone"
        page.click("nav.tabs a[data-view=deliveries]")
        page.focus("#demo-schedule-toggle")
        page.keyboard.press("Tab")  # from the last control above the log (the demo's pause), Tab reaches the newest row
        expect(row(page, job_id)).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#detail-close")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("#detail")).to_be_hidden()
        expect(row(page, job_id)).to_be_focused()
    finally:
        context.close()
        requests.post(schedule + "/resume", headers=XKEY, timeout=10)


def test_a_shipped_scenario_runs_against_the_demo_receiver_and_passes_live(page, sim):
    open_dashboard(page, sim, "scenarios")
    line = page.locator("#scenarios-body tr[data-file='accessrc/delivery-channel-approved.yaml']")
    expect(line).to_contain_text("Delivery channel approved")
    line.get_by_role("button").click()
    run = page.locator("#scenario-run")
    expect(run.locator("h3 .status")).to_have_text("✔Passed")
    steps = run.locator("#scenario-steps > li")
    expect(steps).to_have_count(3)
    assert [steps.nth(i).get_attribute("data-passed") for i in range(3)] == ["true"] * 3
    expect(run).to_contain_text(sim.demo.target_url("accessrc"))
    expect(run).to_contain_text("3 passed, 0 failed")


def test_an_uploaded_scenario_runs_and_a_failing_step_says_why(page, sim):
    open_dashboard(page, sim, "scenarios")
    text = (
        "name: My receiver rejects unsigned deliveries\nplatform: accessrc\nurl: http://127.0.0.1:9/x\n"
        'auth: {kind: hmac, secret: "${HMAC_SECRET}"}\nvars: {HMAC_SECRET: x}\nsteps:\n'
        "  - send: DELIVERY_REFUND_REQUESTED\n    name: accepted\n    expect: {status: 200}\n"
        "  - send: DELIVERY_REFUND_REQUESTED\n    name: expects the wrong answer\n    expect: {status: 418}\n"
    )
    page.set_input_files(
        "#scenario-file", files=[{"name": "mine.yaml", "mimeType": "text/yaml", "buffer": text.encode()}]
    )
    mine = page.locator("#scenarios-body tr[data-file='mine.yaml']")
    expect(mine).to_contain_text("(yours)")
    mine.get_by_role("button").click()
    run = page.locator("#scenario-run")
    expect(run.locator("h3 .status")).to_have_text("✖Failed")
    steps = run.locator("#scenario-steps > li")
    expect(steps).to_have_count(2)
    expect(steps.nth(0)).to_have_attribute("data-passed", "true")
    expect(steps.nth(1)).to_have_attribute("data-passed", "false")
    expect(steps.nth(1)).to_contain_text("expected 418, got 200")


def test_a_scenario_run_shows_the_note_of_a_field_its_set_adds(page, sim):
    """Issue 12: the run view lists the `set:` notes (as `accessrc-sim run` prints them); the step is still sent."""
    open_dashboard(page, sim, "scenarios")
    text = (
        f"name: A typo in set\nplatform: accessrc\nurl: {sim.demo.target_url('accessrc')}\n"
        "steps:\n  - send: DELIVERY_REFUND_REQUESTED\n    set: {extraField: 1}\n"
    )
    page.set_input_files(
        "#scenario-file", files=[{"name": "typo.yaml", "mimeType": "text/yaml", "buffer": text.encode()}]
    )
    page.locator("#scenarios-body tr[data-file='typo.yaml']").get_by_role("button").click()
    run = page.locator("#scenario-run")
    expect(run.locator("#scenario-steps > li")).to_have_count(1)
    expect(run.locator("#scenario-notes")).to_be_visible()
    expect(run.locator("#scenario-notes li")).to_contain_text(
        "set extraField: extraField: extra field 'extraField', not in the documents "
        "(inferred rule accessrc.payload.no-extra-fields)"
    )
    assert page.errors == []


def test_readiness_table_for_a_ready_and_a_flaky_receiver(page, sim):
    open_dashboard(page, sim, "scenarios")
    page.select_option("#ready-platform", "accessrc")
    expect(page.locator("#ready-url")).to_have_value(sim.demo.target_url("accessrc"))
    page.click("#ready-submit")
    expect(page.locator("#verdict")).to_contain_text("READY — all 6 applicable checks passed", timeout=60_000)
    expect(page.locator("#readiness-table tbody tr[data-state=pass]")).to_have_count(6)
    expect(page.locator("#readiness")).not_to_contain_text("null")  # no advice: nothing printed in its place
    page.select_option("#ready-platform", "reachfive")
    page.fill("#ready-url", sim.demo.target_url("reachfive"))
    page.click("#ready-submit")
    expect(page.locator("#verdict")).to_contain_text("READY", timeout=60_000)
    expect(page.locator("#readiness-table tbody tr[data-state='n/a']")).to_have_count(3)
    # ReachFive documents no meaning for an answer: a wrong Authorization makes the 2xx checks advice, not failures
    page.fill("#ready-authorization", "Bearer not-the-demo-token")
    page.click("#ready-submit")
    expect(page.locator("#verdict")).to_contain_text("READY — every documented check passed", timeout=60_000)
    expect(page.locator("#readiness-table tbody tr[data-row=timeout]")).to_contain_text(
        "ok answered within the timeout [1/3]: -> 401"
    )  # documented: an answer in time, whatever its status
    expect(page.locator("#readiness-table tbody tr[data-row=credentials]")).to_have_attribute("data-state", "warn")
    expect(page.locator("#readiness-table tbody tr[data-row=credentials] .status")).to_have_text("!WARN")
    expect(page.locator("#readiness-advice li").first).to_contain_text(
        "advice: Signature or credentials verified: genuine delivery accepted"
    )
    page.select_option("#ready-platform", "accessrc")
    page.fill("#ready-url", sim.demo.target_url("accessrc-flaky"))
    page.click("#ready-submit")
    expect(page.locator("#verdict")).to_contain_text("NOT READY", timeout=60_000)
    expect(page.locator("#readiness-table tbody tr[data-row=credentials]")).to_have_attribute("data-state", "fail")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize(
    "platform, event, target",
    [("accredit", "Entity.Event", "accredit"), ("accessrc", "DELIVERY_REFUND_REQUESTED", "accessrc")],
)
def test_the_verification_commands_shown_really_verify(page, sim, keys_dir, tmp_path, platform, event, target):
    from simulator import signing

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=sim.base_url)
    open_dashboard(page, sim)
    job_id = send_from_panel(page, platform, event, target=target)
    page.goto(f"{sim.base_url}/#job/{job_id}")
    expect(page.locator("#attempt-list > li")).to_have_count(1)
    page.click("#copy-body")
    expect(page.locator("#toast")).to_contain_text("Body copied")
    (tmp_path / "body.json").write_bytes(page.evaluate("navigator.clipboard.readText()").encode("utf-8"))
    (tmp_path / "public.pem").write_text((keys_dir / signing.PUBLIC_FILE).read_text())
    script = page.locator("#detail pre.code").last.inner_text()
    env = {"PATH": "/usr/bin:/bin", "SECRET": "demo-hmac-secret"}
    out = subprocess.run(["bash", "-ec", script], cwd=tmp_path, capture_output=True, text=True, timeout=20, env=env)
    assert out.returncode == 0, (script, out.stderr)
    if platform == "accredit":
        assert "Verified OK" in out.stdout
    else:
        expected = script.rsplit("sha256=", 1)[1].strip()
        assert out.stdout.strip().endswith(expected)


def test_a_body_over_64_kib_shows_its_length_and_sha256(page, sim):
    """Issue 14, item 9: the job view says how much of a body is shown and stored, with the whole one's SHA-256."""
    from simulator.dashboard.demo import DEMO_HMAC_SECRET

    sent = requests.post(
        f"{sim.base_url}/api/send",
        headers={"x-api-key": API_KEY},
        timeout=10,
        json={
            "event": "DELIVERY_REQUEST_SENT",
            "count": 400,
            "url": sim.demo.target_url("accessrc"),
            "auth": {"type": "hmac", "secret": DEMO_HMAC_SECRET},
        },
    )
    assert sent.status_code == 201, sent.text
    job = sent.json()["data"]
    open_dashboard(page, sim)
    page.goto(f"{sim.base_url}/#job/{job['id']}")
    expect(page.locator("#attempt-list > li")).to_have_count(1)
    expect(page.locator("#body-size")).to_contain_text(f"{job['body_length']} bytes (first 64 KiB shown)")
    expect(page.locator("#body-size")).to_contain_text(job["body_sha256"])
    expect(page.locator("#attempt-list .body-cap")).to_contain_text(
        f"{job['body_length']} bytes sent, the first 64 KiB stored (SHA-256 {job['body_sha256']})"
    )


def test_demo_schedule_runs_at_once_pauses_and_the_log_filters_by_source(page, sim):
    """Issue 15: the demo's one schedule is running and says how to pause it; the log's Source filter keeps the
    demo's traffic by default; a ReachFive job reads "1 of 1"; a scenario's refused fault is an expected failure."""
    open_dashboard(page, sim)
    banner = page.locator("#demo-schedule")
    expect(banner).to_contain_text("Demo schedule running: one BadgeExportZipFile.Created every 15 s")
    sub_id = sim.demo.scheduled.id
    fired = requests.post(f"{sim.base_url}/api/subscriptions/{sub_id}/fire", headers=XKEY, timeout=10).json()["data"]
    reach = send_from_panel(page, "reachfive", "END_JOB_NOTIFICATION", target="reachfive")
    page.click("nav.tabs a[data-view=deliveries]")
    expect(page.locator("#filter-source")).to_have_value("")  # all sources, demo traffic included
    expect(row(page, fired["id"])).to_have_attribute("data-state", "succeeded")
    expect(row(page, reach).locator("td.attempts")).to_have_text("1 of 1")
    page.select_option("#filter-source", "demo")
    expect(row(page, fired["id"])).to_be_visible()
    expect(row(page, reach)).to_have_count(0)
    page.select_option("#filter-source", "dashboard")
    expect(row(page, reach)).to_be_visible()
    expect(row(page, fired["id"])).to_have_count(0)
    page.select_option("#filter-source", "")

    page.click("#demo-schedule-toggle")
    expect(banner).to_contain_text("Demo schedule paused")
    assert requests.get(f"{sim.base_url}/api/subscriptions/{sub_id}", headers=XKEY, timeout=10).json()["data"]["paused"]
    page.click("#demo-schedule-toggle")
    expect(banner).to_contain_text("Demo schedule running")

    demo = sim.demo.to_dict()
    target = next(t for t in demo["targets"] if t["id"] == "accessrc")
    secret = demo["scenario_vars"]["HMAC_SECRET"]
    text = (
        f"name: fault\nplatform: accessrc\nurl: {target['url']}\nauth: {{kind: hmac, secret: {secret}}}\n"
        "steps:\n  - fault: bad_signature\n    event: DELIVERY_CHANNEL_STATUS_UPDATED\n    expect: {status: 401}\n"
    )
    run = requests.post(f"{sim.base_url}/api/scenario-runs", headers=XKEY, json={"scenario": text}, timeout=10)
    assert run.status_code == 202, run.text
    run_url = f"{sim.base_url}/api/scenario-runs/{run.json()['data']['id']}"
    wait_until(lambda: requests.get(run_url, headers=XKEY, timeout=10).json()["data"]["status"] == "finished", 20)
    newest = requests.get(f"{sim.base_url}/api/jobs?source=scenario&limit=1", headers=XKEY, timeout=10).json()["data"]
    assert newest[0]["fault"] == "bad_signature" and newest[0]["expected_failure"] is True
    refused = row(page, newest[0]["id"])
    expect(refused.locator(".status")).to_have_text("⚑Expected failure")
    expect(refused).to_have_attribute("data-state", "exhausted")
    refused.click()
    expect(page.locator("#detail")).to_contain_text("with the fault “bad_signature” on purpose")
    assert page.errors == []


# -- the loop: "event out, calls in", the calls received, the reviews (issue 18) ---------------------------------
def _api(sim, method, path, **kwargs):
    session = requests.Session()
    session.trust_env = False
    return session.request(method, sim.base_url + path, headers=XKEY, timeout=10, **kwargs)


def _sync(sim, request_id, delivery_id=None):
    """A receiver calling back after DELIVERY_REQUEST_SENT: a real POST /api/DeliveryRequest/Sync."""
    body = {"deliveryRequestId": request_id, "providerDeliveryRequestId": "SP-REQ-7", "status": "APPROVED"}
    if delivery_id:
        body["providerDelivery"] = [
            {"providerDeliveryId": "SP-D-7", "deliveryId": delivery_id, "syncStatus": "SUCCESS"}
        ]
    return _api(sim, "POST", "/api/DeliveryRequest/Sync", json=body)


def _propose(sim, name="IBAN transfer"):
    channel = str(uuid.uuid4())
    body = {"providerDeliveryChannelId": channel, "name": name}
    created = _api(sim, "POST", "/api/DeliveryChannel/Create", json=body)
    assert created.status_code == 200, created.text
    return channel


def _status_updates(sim, channel):
    """The DELIVERY_CHANNEL_STATUS_UPDATED bodies the demo AccessRC receiver accepted (HMAC verified) for `channel`."""
    return [json.loads(r.body) for r in sim.demo.received["accessrc"] if r.status == 200 and channel in r.body]


def test_a_delivery_thread_shows_the_sync_call_that_follows_it_live(page, sim):
    """Issue 18: a job's detail is the loop as one thread: the event that went out, then the calls that came back."""
    from simulator.dashboard.demo import DEMO_HMAC_SECRET

    request_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
    overrides = {
        "deliveryRequestId": request_id,
        "delivery": [{"deliveryId": delivery_id, "beneficiaryId": "VR-558600001", "deliveryOptions": []}],
    }
    sent = _api(
        sim,
        "POST",
        "/api/send",
        json={
            "event": "DELIVERY_REQUEST_SENT",
            "url": sim.demo.target_url("accessrc"),
            "auth": {"type": "hmac", "secret": DEMO_HMAC_SECRET},
            "overrides": overrides,
        },
    )
    job = sent.json()["data"]
    open_dashboard(page, sim)
    page.goto(f"{sim.base_url}/#job/{job['id']}")
    thread = page.locator("#thread > li")
    expect(thread).to_have_count(1)  # the event out, delivered
    expect(thread.first).to_have_attribute("data-dir", "out")
    expect(thread.first).to_contain_text("DELIVERY_REQUEST_SENT sent")
    expect(thread.first).to_contain_text("✔ 200")
    expect(page.locator("#thread-empty")).to_contain_text("No call back yet")

    assert _sync(sim, request_id, delivery_id).status_code == 200  # the receiver calls back, after the job
    expect(thread).to_have_count(2)  # live: no reload, no click
    assert [thread.nth(i).get_attribute("data-dir") for i in range(2)] == ["out", "in"]
    call = page.locator("#thread > li.call")
    expect(call).to_contain_text("POST /api/DeliveryRequest/Sync")
    expect(call).to_contain_text("✔ 200")
    expect(call).to_contain_text("Answered: Delivery Request is synced successfully")
    expect(page.locator("#thread-empty")).to_have_count(0)
    call.locator("summary", has_text="Request body").click()
    expect(call.locator("pre.call-body")).to_contain_text(f'"deliveryRequestId": "{request_id}"')
    call.locator("summary", has_text="Request headers").click()
    expect(call.locator("table.headers tr", has_text="X-Api-Key")).to_contain_text("*** (masked)")
    assert API_KEY not in page.content()
    assert page.evaluate("window.__sameDocument") is True

    # the calls view lists it with the job it follows, and a refused call that follows none; filters by path
    sim.config["STRICT"] = True  # as `serve --strict`: an id never sent is refused (by default: 200 with advice)
    try:
        assert _sync(sim, str(uuid.uuid4())).status_code == 400
    finally:
        sim.config["STRICT"] = False
    page.keyboard.press("Escape")
    page.click("nav.tabs a[data-view=loop]")
    calls = page.locator("#calls-list > li")
    linked = page.locator(f"#calls-list > li[data-job='{job['id']}']")
    expect(linked).to_have_count(1)
    expect(linked).to_contain_text("follows job")
    unlinked = page.locator("#calls-list > li[data-job='']")
    expect(unlinked.first).to_contain_text("follows no delivery")
    expect(unlinked.first).to_contain_text("✖ 400")
    expect(unlinked.first).to_contain_text("was never sent")
    page.fill("#calls-path", "/api/DeliveryRequest/Sync")
    expect(page.locator("#calls-summary")).to_contain_text("to /api/DeliveryRequest/Sync")
    paths = {calls.nth(i).get_attribute("data-path") for i in range(calls.count())}
    assert paths == {"/api/DeliveryRequest/Sync"}
    page.select_option("#calls-follows", "none")
    expect(linked).to_have_count(0)
    expect(unlinked.first).to_be_visible()
    page.select_option("#calls-follows", "job")
    expect(unlinked).to_have_count(0)
    expect(linked).to_be_visible()
    page.fill("#calls-path", "/api/printQueue/none-such")
    expect(calls).to_have_count(0)
    expect(page.locator("#calls-summary")).to_contain_text("No call to /api/printQueue/none-such")
    linked_job = page.locator("#calls-list > li a[href^='#job/']")
    page.fill("#calls-path", "")
    page.select_option("#calls-follows", "")
    linked_job.filter(has_text=job["id"][:8]).first.click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#thread > li.call")).to_have_count(1)
    assert page.errors == []


def test_reviews_are_read_only_under_automatic_review_and_update_live(page, sim):
    channel = _propose(sim, "Cash pick-up")
    open_dashboard(page, sim, "loop")
    expect(page.locator("#review-mode")).to_contain_text("Review: automatic (serve --review approve")
    row = page.locator(f"#reviews-body tr[data-channel='{channel}']")
    expect(row).to_contain_text("Cash pick-up")
    expect(row.get_by_role("button")).to_have_count(0)  # read-only
    expect(row).to_have_attribute("data-status", "Approved", timeout=20_000)  # by the review, shown without a reload
    expect(row.locator("td[data-label='Answer sent'] a")).to_have_count(1)
    expect(row).to_contain_text("by review")
    create = page.locator("#calls-list > li[data-path='/api/DeliveryChannel/Create']").first
    expect(create).to_contain_text("follows no delivery")
    assert page.errors == []


def test_a_manual_review_approved_from_the_page_answers_the_receiver(page, manual_sim):
    channel = _propose(manual_sim)
    open_dashboard(page, manual_sim, "loop")
    expect(page.locator("#review-mode")).to_contain_text("Review: manual")
    row = page.locator(f"#reviews-body tr[data-channel='{channel}']")
    expect(row).to_have_attribute("data-status", "pending")
    expect(row).to_contain_text("waits for a person")
    row.get_by_role("button", name=re.compile("Approve")).click()
    expect(page.locator("#toast")).to_contain_text("Approved: DELIVERY_CHANNEL_STATUS_UPDATED queued as job")
    expect(row).to_have_attribute("data-status", "Approved")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(row).to_contain_text("by trainer")
    [answer] = wait_until(lambda: _status_updates(manual_sim, channel), 15, what="the status event")
    assert answer["status"] == "Approved" and answer["message"] == ""
    assert answer["providerDeliveryChannelId"] == channel
    row.locator("td[data-label='Answer sent'] a").click()  # the answer is a delivery like any other
    expect(page.locator("#detail")).to_contain_text("DELIVERY_CHANNEL_STATUS_UPDATED")
    expect(page.locator("#attempt-list > li").first).to_contain_text("✔ 200")
    assert page.errors == []


def test_a_manual_reject_needs_a_reason_and_sends_it_as_the_message(page, manual_sim):
    channel = _propose(manual_sim, "Voucher")
    open_dashboard(page, manual_sim, "loop")
    row = page.locator(f"#reviews-body tr[data-channel='{channel}']")
    row.get_by_role("button", name=re.compile("Reject")).click()
    editor = page.locator(f"tr.review-editor[data-editor-for='{channel}']")
    reason = editor.get_by_label("Reason")
    expect(reason).to_be_focused()
    for empty in ("", "   "):
        reason.fill(empty)
        editor.get_by_role("button", name="✖ Send rejection").click()
        expect(editor.locator(".reject-error")).to_contain_text("A rejection needs a reason")
        expect(reason).to_have_attribute("aria-invalid", "true")
        expect(reason).to_be_focused()
    pending = _api(manual_sim, "GET", "/api/reviews?status=pending").json()["data"]
    assert channel in [c["providerDeliveryChannelId"] for c in pending]  # refused in the page: nothing posted
    assert not _status_updates(manual_sim, channel)
    expect(row).to_have_attribute("data-status", "pending")

    reason.fill("The IBAN field label is not clear enough")
    editor.get_by_role("button", name="✖ Send rejection").click()
    expect(row).to_have_attribute("data-status", "Rejected")
    expect(editor).to_have_count(0)
    expect(row).to_contain_text("Reason: The IBAN field label is not clear enough")
    [answer] = wait_until(lambda: _status_updates(manual_sim, channel), 15, what="the status event")
    assert answer["status"] == "Rejected" and answer["message"] == "The IBAN field label is not clear enough"
    decided = _api(manual_sim, "GET", "/api/reviews?status=Rejected").json()["data"]
    assert [c["reason"] for c in decided if c["providerDeliveryChannelId"] == channel] == [
        "The IBAN field label is not clear enough"
    ]
    assert page.errors == []
