"""Issue 12, the auditor's gaps: what the documents say and what we chose are never confused.

- a documented rule that quotes a fact sheet quotes a [D] passage of the section it names, never an [I] one;
- every constraint of the catalogue's JSON Schemas (a refusal) is stated by the quote of a documented rule, and
  nothing the documents only show by example (a date shape, a count's sign) is in a schema;
- an inferred date shape is advice: `sample` accepts it and the reference receiver acknowledges it, unless --strict;
- Accredit: a receiver answering 409 to a repeated X-JobId is READY (the 2xx is our reading), NOT READY with --strict;
- every await_call step of a shipped scenario names its rule;
- each shipped AccessRC scenario sends one event type, and `run --url-for EVENT=URL` sends each event to its own URL;
- the help texts say what --follow-up and the receiver's dedup do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import broken_receivers
import pytest
from click.testing import CliRunner

from simulator import catalogue, rules
from simulator.auth import Auth
from simulator.cli import main
from simulator.receiver import ReceiverConfig, ServerThread, create_receiver, detect_event
from simulator.scenarios.loader import load_file

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "docs" / "sources"
SCENARIOS = ROOT / "scenarios"
HMAC = Auth("hmac", secret="abcd1234")
TAG = re.compile(r"\[(D|I)\b[^\]]*\]")


# -- documented quotes: [D] passages only ------------------------------------------------------------------------
def section_of(text: str, section: str) -> str:
    """The text under the heading `section` (## or ###) up to the next heading of any level."""
    match = re.search(rf"^#{{2,3}} {re.escape(section)}.*\n", text, re.M)
    assert match, f"no section {section}"
    end = re.search(r"^#{1,3} ", text[match.end() :], re.M)
    return text[match.end() : match.end() + end.start()] if end else text[match.end() :]


def fact_sheet_tag(rule: rules.Rule) -> tuple[str, str]:
    """(the first [D…]/[I…] tag from the quote's start to the end of its row or paragraph, that row or paragraph)."""
    name, _, section = rule.where.partition("#")
    text = (SOURCES / name).read_text("utf-8")
    scope = section_of(text, section) if section else text
    at = scope.find(rule.quote)
    assert at >= 0, f"{rule.id}: the quote is not in its section {section!r} of {name}"
    start = scope.rfind("\n", 0, at) + 1
    end = at + len(rule.quote)
    if scope[start:].startswith("|"):  # a table row: its own tag cell
        stop = scope.find("\n", end)
    else:  # prose: up to the end of the paragraph
        stop = scope.find("\n\n", end)
    stop = len(scope) if stop < 0 else stop
    passage = scope[start:stop]
    tag = TAG.search(scope, at, stop)
    if tag is None and scope[start:].startswith("|"):  # a table without a tag column: the tag of its lead-in line
        lines = scope[:start].split("\n")
        while lines and (lines[-1].startswith("|") or not lines[-1].strip()):
            lines.pop()
        lead = lines[-1] if lines else ""
        found = TAG.findall(lead) and list(TAG.finditer(lead))
        return (found[-1].group(0) if found else ""), lead + "\n" + passage
    return (tag.group(0) if tag else ""), passage


FACT_SHEET_RULES = [r for r in rules.all_rules() if r.documented and r.where.startswith("platforms/")]


@pytest.mark.parametrize("rule", FACT_SHEET_RULES, ids=[r.id for r in FACT_SHEET_RULES])
def test_a_documented_rule_quoting_a_fact_sheet_quotes_a_D_passage(rule):
    tag, passage = fact_sheet_tag(rule)
    assert tag.startswith("[D"), f"{rule.id}: its quote is tagged {tag or 'nothing'}: {passage!r}"
    assert tag != "[D: absent]" or "not documented" in rule.text or "documents no" in rule.text, rule.id
    if "[I" in passage:  # "[D] table / [I] naming": the rule says which half it rests on
        assert rule.reason, f"{rule.id}: its passage mixes [D] and [I] ({passage!r}); say in reason which is quoted"


def test_the_rules_the_auditor_named_now_quote_what_they_assert():
    statuses = rules.get("reachfive.payload.status-values")
    assert all(f"`{value}`" in statuses.quote for value in ("SUCCESS", "FAILURE", "RUNNING"))
    assert rules.get("accessrc.headers.no-job-headers").source == "inferred"
    assert rules.get("accessrc.dcsu.requested-date-shape").source == "inferred"


# -- every schema constraint is stated by a documented quote -------------------------------------------------------
PATTERN_WORDS = {  # each pattern a schema holds -> the words a documented quote must say for it to refuse
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": "UUID",
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$": "ISO 8601",
    # Accredit: the zone is advice (accredit.payload.timestamp-zone: .NET writes none), the ISO form documented
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$": "ISO 8601",
    r"^[^.]+\.[^.]+$": "Entity.Event",
}
INFERRED_KEYWORDS = {  # bounds the documents never give: advice (an Advisory), never in a schema
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
    "multipleOf",
    "uniqueItems",
    "minProperties",
    "maxProperties",
}


def constraints(schema: dict, path: str = ""):
    """(path, keyword, value) of every constraint in a schema (types aside)."""
    for key, value in schema.items():
        if key in ("pattern", "enum", "const", "required") or key in INFERRED_KEYWORDS:
            yield path or "(body)", key, value
        if key == "additionalProperties" and value is False:
            yield path or "(body)", key, value
    for name, sub in (schema.get("properties") or {}).items():
        yield from constraints(sub, f"{path}.{name}".lstrip("."))
    if isinstance(schema.get("items"), dict):
        yield from constraints(schema["items"], f"{path}[]")


@pytest.mark.parametrize("spec", catalogue.EVENTS, ids=[e.name for e in catalogue.EVENTS])
def test_every_schema_constraint_is_stated_by_a_documented_quote(spec):
    quotes = [
        r.quote for r in rules.select(platform=spec.platform, event=spec.name) if r.documented and r.topic == "schema"
    ]
    found = list(constraints(spec.schema))
    assert found, spec.name
    for path, keyword, value in found:
        where = f"{spec.schema_file} {path} {keyword}"
        assert keyword not in INFERRED_KEYWORDS, f"{where}: not documented: make it an inferred advisory"
        assert keyword != "additionalProperties", f"{where}: closed objects are inferred (no-extra-fields advice)"
        if keyword in ("enum", "const"):
            values = value if keyword == "enum" else [value]
            assert any(all(str(v) in q for v in values) for q in quotes), f"{where}: no documented quote lists {values}"
        elif keyword == "pattern":
            assert value in PATTERN_WORDS, f"{where}: a pattern no documented rule states ({value}): inferred advice?"
            assert any(PATTERN_WORDS[value] in q for q in quotes), f"{where}: no documented quote says {value}"
            if PATTERN_WORDS[value] == "UUID":  # and says it of this field (its own row: accessrc.payload.uuid.*)
                leaf = path.rsplit(".", 1)[-1].replace("[]", "")
                assert any("UUID" in q and f"{leaf}`" in q for q in quotes), f"{where}: no quote says {leaf} is a UUID"
        else:  # required
            for field in value:
                assert any(field in q and ("required" in q or "| yes |" in q or "base fields" in q) for q in quotes), (
                    f"{where}: no documented quote calls {field} required"
                )


# -- B: the requestedDate shape is inferred -------------------------------------------------------------------------
ISO_DATE = "2025-04-07T06:42:29Z"


def test_an_iso_requested_date_is_advice_for_sample_and_refused_only_with_strict():
    runner = CliRunner()
    out = runner.invoke(main, ["sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", f"requestedDate={ISO_DATE}"])
    assert out.exit_code == 0, out.output
    assert "accessrc.dcsu.requested-date-shape" in out.output  # a note, with the rule
    assert json.loads(out.output[out.output.index("{") :])["requestedDate"] == ISO_DATE
    strict = runner.invoke(
        main, ["sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", f"requestedDate={ISO_DATE}", "--strict"]
    )
    assert strict.exit_code == 2 and "inferred rule accessrc.dcsu.requested-date-shape" in strict.output
    # the type is documented: a number is still refused
    number = runner.invoke(main, ["sample", "DELIVERY_CHANNEL_STATUS_UPDATED", "--set", "requestedDate=20250407"])
    assert number.exit_code == 2, number.output


def test_a_documented_date_shape_with_the_day_first_is_one_advice_not_two():
    advice = catalogue.advise("DELIVERY_CHANNEL_STATUS_UPDATED", {**seed_002(), "requestedDate": "13/07/2025 06:42:29"})
    assert [a.rule for a in advice] == ["accessrc.dcsu.requested-date-month-first"]
    advice = catalogue.advise("DELIVERY_CHANNEL_STATUS_UPDATED", {**seed_002(), "requestedDate": ISO_DATE})
    assert [a.rule for a in advice] == ["accessrc.dcsu.requested-date-shape"]


def seed_002() -> dict:
    return dict(
        catalogue.find_example(catalogue.get_event("DELIVERY_CHANNEL_STATUS_UPDATED"), "seed-002-approved").payload
    )


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_the_reference_receiver_acknowledges_an_iso_requested_date_unless_strict(strict):
    import requests

    app = create_receiver(ReceiverConfig("accessrc", HMAC, None, None, 0, strict=strict))
    server = ServerThread(app).start()
    try:
        body = catalogue.body_bytes({**seed_002(), "requestedDate": ISO_DATE})
        digest = hmac.new(b"abcd1234", body, hashlib.sha256).hexdigest()
        answer = requests.post(
            server.url + "/hook",
            data=body,
            headers={"Content-Type": "application/json", "x-signature": f"sha256={digest}"},
            timeout=10,
        )
    finally:
        server.stop()
    assert answer.status_code == (400 if strict else 200), answer.text


# -- C: Accredit repeats: handled is documented, a 2xx is inferred ----------------------------------------------------
def conflicts_on_repeats(public_pem: str):
    """The reference receiver, but 409 to a notification whose X-JobId it has seen: handled, not acknowledged."""
    return broken_receivers.fails_duplicates("accredit", Auth("rsa"), public_pem, status=409)


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_409_to_a_repeated_x_jobid_is_advice_and_not_ready_only_with_strict(keys, keys_dir, tmp_path, strict):
    server = ServerThread(conflicts_on_repeats(keys.public_pem)).start()
    report = tmp_path / "verdict.json"
    try:
        result = CliRunner().invoke(
            main,
            [
                "conformance",
                "--url",
                server.url + "/baseWebhookNotification",
                "--platform",
                "accredit",
                "--report",
                str(report),
                "--db",
                str(tmp_path / "c.db"),
                "--keys-dir",
                str(keys_dir),
                *(["--strict"] if strict else []),
            ],
            catch_exceptions=False,
        )
    finally:
        server.stop()
    verdict = json.loads(report.read_text())
    row = next(r for r in verdict["rows"] if r["id"] == "idempotency")
    by_rule = {}
    for check in row["checks"]:
        by_rule.setdefault(check["rule"], set()).add(check["state"])
    assert by_rule["accredit.conformance.idempotency"] == {"pass"}  # a 4xx: handled, no server error
    assert by_rule["accredit.conformance.idempotency-ack"] == ({"fail"} if strict else {"warn"})
    if strict:
        assert result.exit_code == 1 and "Verdict: NOT READY" in result.output, result.output
    else:
        assert result.exit_code == 0 and "Verdict: READY" in result.output, result.output
        assert "inferred (accredit.conformance.idempotency-ack)" in result.output
    quote = next(c["quote"] for c in row["checks"] if c["rule"] == "accredit.conformance.idempotency")
    assert "X-JobAttempt\nandX-JobId\nheaders" in quote  # the JSON report carries the document's text verbatim


# -- D: every await_call step names its rule --------------------------------------------------------------------------
SHIPPED = sorted(p for p in SCENARIOS.rglob("*.yaml") if "conformance" not in p.relative_to(SCENARIOS).parts)


def all_steps(steps):
    for step in steps:
        yield step
        yield from all_steps(step.children)


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(SCENARIOS)) for p in SHIPPED])
def test_every_await_call_of_a_shipped_scenario_names_its_rule(path):
    scenario = load_file(path)
    for step in all_steps(scenario.steps):
        if step.kind != "await_call":
            continue
        assert step.rule is not None, f"{step.where}: {step.name}: an await_call names the rule it rests on"
        assert step.rule.platform == scenario.platform, step.where
        # a deadline is never documented: an await that fails a receiver by default must say why it may
        assert not step.rule.documented, f"{step.where}: {step.rule.id} is documented but WITHIN is ours"


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(SCENARIOS)) for p in SHIPPED])
def test_every_expectation_of_a_shipped_scenario_carries_its_provenance(path):
    """A step that expects something names the rule it rests on (documented: it fails a receiver; inferred: it
    warns), so `run --report` and the JUnit output give every check its source."""
    scenario = load_file(path)
    for step in all_steps(scenario.steps):
        if "expect" not in step.data and step.kind != "await_call":
            continue
        assert step.rule is not None, f"{step.where}: {step.name}: names no rule"
        assert step.rule.platform == scenario.platform, step.where


# -- E: one callback URL per AccessRC event type -----------------------------------------------------------------------
ACCESSRC_SHIPPED = [p for p in SHIPPED if p.parent.name == "accessrc"]


@pytest.mark.parametrize("path", ACCESSRC_SHIPPED, ids=[p.name for p in ACCESSRC_SHIPPED])
def test_each_shipped_accessrc_scenario_sends_one_event_type(path):
    events = {s.event for s in all_steps(load_file(path).steps) if s.kind in ("send", "fault") and s.event}
    assert len(events) == 1, f"{path.name} sends {sorted(events)} to one RECEIVER_URL"


class PerEvent:
    """A receiver of one AccessRC event at its own URL, as a subscription is: the reference receiver for that event,
    behind a guard that answers 400 to a body of any other event type and keeps it in `foreign`."""

    def __init__(self, event: str | None):
        self.event = event
        self.foreign: list[str] = []
        self.count = 0
        inner = create_receiver(ReceiverConfig("accessrc", HMAC, None, event, 0))

        def app(environ, start_response):
            body = broken_receivers._read(environ)
            self.count += 1
            try:
                got = detect_event("accessrc", json.loads(body))
            except ValueError:
                got = None  # not JSON: the receiver refuses it (400) whatever its event
            if got is not None and got != self.event:
                self.foreign.append(got)
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [
                    b'{"status": "failed", "error": {"code": 400, "message": "not my event", "type": "BadRequest"}}'
                ]
            return inner(environ, start_response)

        self.server = ServerThread(app).start()
        self.url = self.server.url + "/hook"


@pytest.fixture
def per_event():
    started = []

    def start(event):
        receiver = PerEvent(event)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.server.stop()


def run(tmp_path, keys_dir, *args):
    return CliRunner().invoke(
        main, ["run", *map(str, args), "--db", str(tmp_path / "r.db"), "--keys-dir", str(keys_dir)]
    )


def test_receiver_defences_posts_only_its_one_event_to_a_per_event_receiver(per_event, tmp_path, keys_dir):
    dcsu = per_event("DELIVERY_CHANNEL_STATUS_UPDATED")
    result = run(tmp_path, keys_dir, SCENARIOS / "accessrc/receiver-defences.yaml", "--var", f"RECEIVER_URL={dcsu.url}")
    assert result.exit_code == 0, result.output
    assert dcsu.foreign == [] and dcsu.count >= 12
    assert "0 failed" in result.output


def test_run_url_for_event_sends_every_event_of_the_shipped_folder_to_its_own_url(per_event, tmp_path, keys_dir):
    receivers = {spec.name: per_event(spec.name) for spec in catalogue.events("accessrc")}
    fallback = per_event(None)  # RECEIVER_URL: nothing may reach it once every event has its URL
    url_for = [arg for name, r in receivers.items() for arg in ("--url-for", f"{name}={r.url}")]
    result = run(tmp_path, keys_dir, SCENARIOS / "accessrc", *url_for, "--var", f"RECEIVER_URL={fallback.url}")
    assert result.exit_code == 0, result.output
    assert fallback.count == 0
    for name, receiver in receivers.items():
        assert receiver.foreign == [], f"{name}'s URL got {receiver.foreign}"
        assert receiver.count > 0, f"no shipped scenario sent {name}"


def test_without_its_url_an_event_goes_to_the_scenario_url_and_a_per_event_receiver_refuses_it(
    per_event, tmp_path, keys_dir
):
    """The guard can fail: the refund scenario sent to the status receiver's URL is refused as another event."""
    dcsu = per_event("DELIVERY_CHANNEL_STATUS_UPDATED")
    refund = per_event("DELIVERY_REFUND_REQUESTED")
    target = SCENARIOS / "accessrc/delivery-refund-requested.yaml"
    wrong = run(tmp_path, keys_dir, target, "--var", f"RECEIVER_URL={dcsu.url}")
    assert wrong.exit_code == 1 and dcsu.foreign, wrong.output
    right = run(
        tmp_path,
        keys_dir,
        target,
        "--var",
        f"RECEIVER_URL={dcsu.url}",
        "--url-for",
        f"DELIVERY_REFUND_REQUESTED={refund.url}",
    )
    assert right.exit_code == 0, right.output
    assert refund.foreign == [] and refund.count > 0


def test_run_url_for_an_unknown_event_is_a_usage_error(tmp_path, keys_dir):
    result = run(tmp_path, keys_dir, SCENARIOS / "accessrc", "--url-for", "NO_SUCH_EVENT=http://127.0.0.1:9/x")
    assert result.exit_code == 2 and "or EVENT an event name" in result.output


# -- F: help texts -------------------------------------------------------------------------------------------------
def test_help_texts_say_what_follow_up_and_dedup_do():
    runner = CliRunner()
    conformance = " ".join(runner.invoke(main, ["conformance", "--help"]).output.split())
    assert "it counts" not in conformance
    assert "WARN" in conformance and "FAIL only with --strict" in conformance
    receiver = " ".join(runner.invoke(main, ["receiver", "--help"]).output.split())
    assert "dedupes X-JobId" not in receiver
    assert "Accredit's by X-JobId" in receiver and "by an exact duplicate body" in receiver
