"""Regenerate the dashboard screenshots in this folder: `python docs/screenshots/make_screenshots.py`.

Starts the simulator with its demo receivers on 127.0.0.1 (a temporary database and key pair), drives the
dashboard in headless Chromium (Debian's `chromium`, through Playwright) through a trainer's demo, and saves
one PNG per main view.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright
from waitress.server import create_server

from simulator.app import create_app
from simulator.dashboard.demo import DEMO_HMAC_SECRET, start_demo

OUT = Path(__file__).resolve().parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="accessrc-sim-shots-"))
    app = create_app(
        {
            "DB_PATH": str(tmp / "sim.db"),
            "KEYS_DIR": str(tmp / "keys"),
            "API_KEY": "screenshots",
            "RETRY_DELAYS": (1, 1, 1, 1, 1),
            "REVIEW": "manual",  # the trainer's Approve / Reject buttons in the "Calls & reviews" picture
        }
    )
    demo = start_demo(app)
    server = create_server(app, host="127.0.0.1", port=0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    login = f"{base}/?token={app.extensions['accessrc_sim_sessions'].login_token}"  # the URL `serve` prints
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(login + "#send")  # logs in, then the page without the token
            expect(page.locator("#live")).to_have_attribute("data-state", "live")

            def send(platform, event, preset=None, target=None, forge=False):
                page.click("nav.tabs a[data-view=send]")
                page.select_option("#send-platform", platform)
                page.select_option("#send-event", event)
                if preset:
                    page.select_option("#send-preset", preset)
                if target:
                    page.click(f"#send-demo-targets button[data-target='{target}']")
                page.wait_for_timeout(300)
                page.set_checked("#send-forge", forge)
                page.click("#send-submit")
                link = page.locator("#send-result a[href^='#job/']")
                expect(link).to_be_visible()
                return link.get_attribute("href").split("/", 1)[1]

            send("accessrc", "DELIVERY_CHANNEL_STATUS_UPDATED", "channel-approved-delivery-channel-create", "accessrc")
            send("accessrc", "DELIVERY_CHANNEL_STATUS_UPDATED", "channel-rejected-delivery-channel-update", "accessrc")
            send("reachfive", "END_JOB_NOTIFICATION", "reachfive-import-success", "reachfive")
            forged = send("accredit", "BadgeExportZipFile.Created", target="accredit", forge=True)
            flaky = send("accessrc", "APPLICATIONS_IMPORT_RESULT", "import-partial", "accessrc-flaky")
            page.select_option("#send-platform", "accessrc")
            page.select_option("#send-event", "APPLICATIONS_IMPORT_RESULT")
            page.select_option("#send-preset", "import-partial")
            page.click("#send-demo-targets button[data-target='accessrc']")
            page.wait_for_timeout(2500)  # the notices fade
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(OUT / "send.png"))

            page.click("nav.tabs a[data-view=deliveries]")
            flaky_row = page.locator(f"#jobs-body tr[data-job='{flaky}']")
            expect(flaky_row).to_have_attribute("data-state", "succeeded", timeout=20_000)
            page.locator(f"#jobs-body tr[data-job='{forged}']").get_attribute("data-state")
            time.sleep(1.5)  # the forgery is on its first retries: a "Retrying" row in the picture
            page.screenshot(path=str(OUT / "deliveries.png"))
            flaky_row.click()
            expect(page.locator("#attempt-list > li")).to_have_count(3)
            page.screenshot(path=str(OUT / "job.png"))
            page.locator("#detail-json").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "job-body.png"))
            page.keyboard.press("Escape")

            page.click("nav.tabs a[data-view=subscriptions]")
            expect(page.locator("#subs-body tr").first).to_contain_text("DELIVERY_CHANNEL_STATUS_UPDATED")
            page.screenshot(path=str(OUT / "subscriptions.png"))

            page.click("nav.tabs a[data-view=scenarios]")
            page.locator("#scenarios-body tr[data-file='accessrc/applications-import-result.yaml'] button").click()
            expect(page.locator("#scenario-run h3 .status")).to_have_text("✔Passed", timeout=30_000)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(OUT / "scenarios.png"))
            page.click("#ready-submit")
            expect(page.locator("#verdict")).to_be_visible(timeout=60_000)
            page.locator("#readiness-form").screenshot(path=str(OUT / "readiness.png"))

            # the loop: a DELIVERY_REQUEST_SENT, the receiver's Syncs back, channels proposed and reviewed
            api = requests.Session()
            api.trust_env = False
            api.headers["x-api-key"] = "screenshots"
            request_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
            overrides = {
                "deliveryRequestId": request_id,
                "delivery": [{"deliveryId": delivery_id, "beneficiaryId": "VR-558600001", "deliveryOptions": []}],
            }
            job = api.post(
                f"{base}/api/send",
                json={
                    "event": "DELIVERY_REQUEST_SENT",
                    "url": demo.target_url("accessrc"),
                    "auth": {"type": "hmac", "secret": DEMO_HMAC_SECRET},
                    "overrides": overrides,
                },
            ).json()["data"]
            page.goto(f"{base}/#job/{job['id']}")
            expect(page.locator("#thread > li.out")).to_have_count(1)
            sync = {"deliveryRequestId": request_id, "providerDeliveryRequestId": "SP-REQ-1", "status": "APPROVED"}
            sync["providerDelivery"] = [
                {"providerDeliveryId": "SP-D-1", "deliveryId": delivery_id, "syncStatus": "SUCCESS"}
            ]
            api.post(f"{base}/api/DeliveryRequest/Sync", json=sync)
            delivered = {
                "providerDeliveryId": "SP-D-1",
                "deliveryId": None,
                "deliveryAmount": 50,
                "deliveryUnit": "EUR",
            }
            api.post(f"{base}/api/Delivery/Sync", json={"deliveryList": [{**delivered, "status": "DELIVERED"}]})
            expect(page.locator("#thread > li.call")).to_have_count(2)
            page.locator("#thread > li.call summary").first.click()
            page.locator("#thread-title").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "thread.png"))
            page.keyboard.press("Escape")
            api.post(f"{base}/api/DeliveryRequest/Sync", json={"deliveryRequestId": str(uuid.uuid4())})  # never sent
            for name in ("IBAN transfer", "Cash pick-up"):
                channel = {"providerDeliveryChannelId": str(uuid.uuid4()), "name": name}
                api.post(f"{base}/api/DeliveryChannel/Create", json=channel)
            page.click("nav.tabs a[data-view=loop]")
            reviews = page.locator("#reviews-body tr")
            expect(reviews).to_have_count(2)
            reviews.nth(1).get_by_role("button", name="✔ Approve").click()
            expect(reviews.nth(1)).to_have_attribute("data-status", "Approved")
            reviews.first.get_by_role("button", name="✖ Reject…").click()
            page.locator("tr.review-editor input").fill("The IBAN field label is not clear enough")
            page.wait_for_timeout(4500)  # the "Approved" notice fades
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(OUT / "loop.png"))

            phone = browser.new_page(viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True)
            phone.goto(login + "#deliveries")
            expect(phone.locator("#live")).to_have_attribute("data-state", "live")
            expect(phone.locator("#jobs-body tr").first).to_be_visible()
            phone.screenshot(path=str(OUT / "phone.png"))
            browser.close()
    finally:
        app.extensions["accessrc_sim"].stopping.set()
        time.sleep(0.5)
        server.close()
        demo.stop()
        app.extensions["accessrc_sim"].stop(5)
        shutil.rmtree(tmp, ignore_errors=True)
    for name in (
        "deliveries",
        "job",
        "job-body",
        "send",
        "subscriptions",
        "scenarios",
        "readiness",
        "thread",
        "loop",
        "phone",
    ):
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
