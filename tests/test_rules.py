"""The rules registry: every rule carries its source; every documented quote is verbatim in the documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator import catalogue, rules
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "docs" / "sources"  # copies of ../shared/seeds and ../shared/platforms
SHARED = ROOT.parent / "shared"


def document(where: str) -> str:
    """The raw text of the file `where` names, as stored (bytes decoded, nothing normalised)."""
    name = where.split("#", 1)[0]
    path = SOURCES / name
    assert path.is_file(), f"no document {name} under docs/sources"
    return path.read_bytes().decode("utf-8")


def test_sources_are_the_shared_documents():
    if not SHARED.is_dir():  # CI lays shared/ beside the clone; a lone clone checks against its own copies
        return
    for folder in ("seeds", "platforms"):
        for path in (SHARED / folder).iterdir():
            assert (SOURCES / folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_every_rule_has_its_source_and_documented_quotes_are_verbatim():
    every = rules.all_rules()
    assert len(every) > 40
    for rule in every:
        assert rule.source in ("documented", "inferred"), rule.id
        if rule.documented:
            text = document(rule.where)
            # exact: no white space folded (the seeds' line breaks fall inside sentences; quotes keep them)
            assert rule.quote in text, f"{rule.id}: quote not verbatim in {rule.where}"
            section = rule.where.partition("#")[2]
            if section:
                assert f"## {section}" in text or f"### {section}" in text, f"{rule.id}: no section {section}"
        else:
            assert rule.reason and not rule.quote, rule.id


def test_rule_platforms_and_events_exist():
    names = {e.name for e in catalogue.EVENTS}
    for rule in rules.all_rules():
        assert rule.platform in catalogue.PLATFORMS, rule.id
        assert rule.event is None or rule.event in names, rule.id


def test_rules_cli_json_and_filters():
    runner = CliRunner()
    out = runner.invoke(main, ["rules", "--json"])
    assert out.exit_code == 0, out.output
    items = json.loads(out.output)
    assert len(items) == len(rules.all_rules())
    for item in items:
        assert {"id", "platform", "event", "source", "quote", "reason"} <= set(item)
    accredit = json.loads(runner.invoke(main, ["rules", "--platform", "accredit", "--json"]).output)
    assert accredit and all(i["platform"] == "accredit" for i in accredit)
    event = json.loads(runner.invoke(main, ["rules", "APPLICATIONS_IMPORT_RESULT", "--json"]).output)
    assert any(i["event"] == "APPLICATIONS_IMPORT_RESULT" for i in event)
    assert all(i["platform"] == "accessrc" and i["event"] in (None, "APPLICATIONS_IMPORT_RESULT") for i in event)
    text = runner.invoke(main, ["rules", "--platform", "reachfive"])
    assert text.exit_code == 0 and "documented" in text.output and "inferred" in text.output
    bad = runner.invoke(main, ["rules", "NO_SUCH_EVENT"])
    assert bad.exit_code == 2 and "unknown event" in bad.output


@pytest.mark.parametrize(
    "rule_id,source",
    [
        ("accredit.retries.on-400", "documented"),
        ("accessrc.retries.policy", "inferred"),
        # the fact sheet's row on dedup ids is tagged [I]; "no such header" is our reading of the silence
        ("accessrc.headers.no-job-headers", "inferred"),
        # one example, "[D] example / [I] format": the type is documented, the shape is not
        ("accessrc.dcsu.requested-date-string", "documented"),
        ("accessrc.dcsu.requested-date-shape", "inferred"),
        # Accredit repeats: that a repeat is handled is documented, that it gets a 2xx is our reading
        ("accredit.conformance.idempotency", "documented"),
        ("accredit.conformance.idempotency-ack", "inferred"),
    ],
)
def test_the_issue_examples_are_tagged_as_the_documents_say(rule_id, source):
    assert rules.get(rule_id).source == source


def test_every_advisory_names_an_inferred_payload_rule_of_its_platform():
    for spec in catalogue.EVENTS:
        ids = [a.rule for a in spec.advisories] + ([spec.closed_rule] if spec.closed_rule else [])
        for rule_id in ids:
            rule = rules.get(rule_id)
            assert rule.source == "inferred" and rule.platform == spec.platform, rule_id
            assert rule.event in (None, spec.name), rule_id
