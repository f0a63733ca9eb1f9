"""Bad scenario files: every problem as an exact `file:line:column: message`, exit 2, nothing sent."""

import json
import time

import pytest
from click.testing import CliRunner

from simulator.auth import Auth
from simulator.cli import main
from simulator.scenarios.loader import ScenarioFileError, load_file, load_text, schema

BAD = """\
name: Broken on purpose
platform: accessrc
url: ${RECEIVER_URL}
auth: {kind: hmac, secret: "${HMAC_SECRET}"}
steps:
  - sned: DELIVERY_CHANNEL_STATUS_UPDATED
  - send: DELIVERY_CHANNEL_STATUS_UPDTED
  - send: DELIVERY_CHANNEL_STATUS_UPDATED
    set:
      statuss.code: Approved
      requestType: Delivery Channel Create
  - send: DELIVERY_REFUND_REQUESTED
    headers: {X-Trace: "run-${RUN_ID}"}
    expect:
      body: {data.deliveryId: "${refund.payload.deliveryId}"}
      expct: 1
"""


def problems_of(tmp_path, name, text, **kwargs):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as exc:
        load_file(path, env={}, **kwargs)
    return [p.replace(str(path), name) for p in exc.value.problems]


def test_every_problem_is_listed_with_its_exact_position(tmp_path):
    assert problems_of(tmp_path, "bad.yaml", BAD) == [
        "bad.yaml:3:6: undefined variable 'RECEIVER_URL' (define it under vars, or pass --var RECEIVER_URL=VALUE)",
        "bad.yaml:4:29: undefined variable 'HMAC_SECRET' (define it under vars, or pass --var HMAC_SECRET=VALUE)",
        "bad.yaml:6:5: unknown step kind 'sned': a step starts with one of "
        "send, fault, expect, wait, repeat, await_call",
        "bad.yaml:7:11: unknown event 'DELIVERY_CHANNEL_STATUS_UPDTED' for accessrc; known: "
        "DELIVERY_CHANNEL_STATUS_UPDATED, DELIVERY_REQUEST_SENT, DELIVERY_REFUND_REQUESTED, "
        "PROGRAM_ELIGIBILITY_EVALUATED, PROGRAM_PULL_FORM, APPLICATIONS_IMPORT_RESULT",
        "bad.yaml:10:7: set: path 'statuss.code' does not exist in DELIVERY_CHANNEL_STATUS_UPDATED "
        "(no field 'statuss')",
        "bad.yaml:13:29: undefined variable 'RUN_ID' (define it under vars, or pass --var RUN_ID=VALUE)",
        "bad.yaml:15:32: undefined variable '${refund.payload.deliveryId}': no earlier step is named 'refund' "
        "(name one with as:)",
        "bad.yaml:16:7: unknown field 'expct' in expect (allowed: attempts, body, echo, envelope, latency_ms, status)",
    ]


def test_cli_exits_2_and_sends_nothing_when_any_file_is_bad(tmp_path, start_receiver, keys_dir):
    srv = start_receiver("accessrc")
    good = tmp_path / "good.yaml"
    good.write_text(f"name: ok\nplatform: accessrc\nurl: {srv.url}/hook\nsteps:\n  - send: DELIVERY_REFUND_REQUESTED\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(good),
            str(bad),
            "--db",
            str(tmp_path / "x.db"),
            "--keys-dir",
            str(keys_dir),
            "--junit",
            str(tmp_path / "j.xml"),
        ],
    )
    assert result.exit_code == 2
    assert f"{bad}:6:5: unknown step kind 'sned'" in result.output
    assert "8 problem(s); nothing was sent" in result.output
    assert srv.received == []
    assert not (tmp_path / "j.xml").exists()


def test_json_files_report_positions_too(tmp_path):
    text = (
        '{\n\t"name": "J",\n\t"platform": "accredit",\n\t"url": "http://127.0.0.1:1/x",\n\t"steps": [\n'
        '\t\t{"send": "Entity.Event", "set": {"Event": "x"}},\n\t\t{"fault": "bad_signature"}\n\t]\n}\n'
    )
    assert problems_of(tmp_path, "s.json", text) == [
        "s.json:6:36: set: Event: 'x' does not match '^[^.]+\\\\.[^.]+$' (Entity.Event)",
        "s.json:7:3: fault bad_signature: missing required field 'event'",
    ]


def test_invalid_json_and_yaml_syntax(tmp_path):
    assert problems_of(tmp_path, "k.json", '{"name": "J",\n "platform": "accredit" "url": 1}\n') == [
        "k.json:2:25: invalid JSON: Expecting ',' delimiter"
    ]
    got = problems_of(
        tmp_path,
        "y.yaml",
        "name: x\nplatform: accredit\nurl: http://x\nsteps:\n  - send: Entity.Event\n   set: {a: 1}\n",
    )
    assert len(got) == 1 and got[0].startswith("y.yaml:6:4: YAML syntax error: ")


def test_platform_rules_and_value_checks(tmp_path):
    text = (
        "name: x\nplatform: reachfive\nurl: http://127.0.0.1:1/\nretry: {delays: [0]}\nsteps:\n"
        "  - fault: bad_signature\n    event: END_JOB_NOTIFICATION\n"
        "  - send: END_JOB_NOTIFICATION\n    expect: {status: twohundred}\n"
        "  - wait: -1\n"
        "  - send: END_JOB_NOTIFICATION\n    job_attempt: 2\n"
    )
    assert problems_of(tmp_path, "r.yaml", text) == [
        "r.yaml:4:8: retry: reachfive never retries (fire-and-forget); remove retry",
        "r.yaml:6:12: fault bad_signature: this scenario sends no credentials (auth kind none); set auth, "
        "or limit the step with when: {auth: [...]}",
        "r.yaml:9:22: expect.status: 'twohundred' must be an HTTP status (e.g. 200), a class such as 2xx, "
        "or a list of them",
        "r.yaml:10:11: wait: -1 is less than the minimum of 0",
        "r.yaml:12:18: job_attempt: reachfive sends no X-JobAttempt header",
    ]


def test_top_level_problems(tmp_path):
    text = "name: x\nplatform: acessrc\nsteps: []\ncolour: blue\nname: y\n"
    assert problems_of(tmp_path, "t.yaml", text) == ["t.yaml:5:1: duplicate key 'name'"]
    text = "name: x\nplatform: acessrc\nsteps: []\ncolour: blue\n"
    assert problems_of(tmp_path, "t.yaml", text) == [
        "t.yaml:1:1: scenario: missing required field 'url'",
        "t.yaml:2:11: platform: 'acessrc' is not one of accessrc, accredit, reachfive",
        "t.yaml:3:8: steps: [] should be non-empty",
        "t.yaml:4:1: unknown field 'colour' in scenario (allowed: auth, description, name, platform, profile, "
        "retry, steps, timeout, url, vars)",
    ]
    assert problems_of(tmp_path, "e.yaml", "") == [
        "e.yaml:1:1: a scenario file is a mapping with name, platform, url and steps (got null)"
    ]


def test_fault_specific_checks(tmp_path):
    text = (
        "name: x\nplatform: accessrc\nurl: http://127.0.0.1:1/\nauth: {kind: basic, username: u, password: p}\n"
        "steps:\n"
        "  - fault: tampered_body\n    event: DELIVERY_REFUND_REQUESTED\n"
        "  - fault: duplicate\n    of: nobody\n"
        "  - fault: malformed_json\n    event: DELIVERY_REFUND_REQUESTED\n    size: 5000\n"
        "  - fault: missing_required_field\n    event: DELIVERY_REFUND_REQUESTED\n    field: refundId\n"
        "  - expect: {of: ghost}\n"
    )
    assert problems_of(tmp_path, "f.yaml", text) == [
        "f.yaml:6:12: fault tampered_body: basic auth does not cover the body, so a changed body cannot be "
        "detected; it needs rsa or hmac",
        "f.yaml:9:9: of: no earlier step is named 'nobody' (name one with as:)",
        "f.yaml:12:5: size: only for the oversized_body fault",
        "f.yaml:15:12: field: path 'refundId' does not exist in DELIVERY_REFUND_REQUESTED",
        "f.yaml:16:18: expect.of: no earlier step is named 'ghost' (name one with as:)",
    ]


def test_bad_auth_for_the_platform(tmp_path):
    text = "name: x\nplatform: accessrc\nurl: http://127.0.0.1:1/\nauth: {kind: rsa}\nsteps:\n  - wait: 0\n"
    assert problems_of(tmp_path, "a.yaml", text) == [
        "a.yaml:4:7: auth: accessrc does not use 'rsa' auth; it uses none, header, basic, hmac"
    ]


def test_payload_references_are_checked_against_the_event(tmp_path):
    text = (
        "name: x\nplatform: accessrc\nurl: http://127.0.0.1:1/\nsteps:\n"
        "  - send: DELIVERY_REFUND_REQUESTED\n    as: refund\n"
        "  - send: DELIVERY_REFUND_REQUESTED\n    set: {deliveryId: '${refund.payload.deliveryID}'}\n"
        "  - send: DELIVERY_REFUND_REQUESTED\n    set: {deliveryId: '${refund.answer.status}'}\n"
    )
    assert problems_of(tmp_path, "p.yaml", text) == [
        "p.yaml:8:24: '${refund.payload.deliveryID}': path 'deliveryID' does not exist in DELIVERY_REFUND_REQUESTED",
        "p.yaml:10:24: '${refund.answer.status}': after the step name use one of payload, response, request, "
        "job_id, attempts",
    ]


def test_variables_precedence_and_typing(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(
        "name: x\nplatform: reachfive\nurl: ${BASE:-http://127.0.0.1:1}/jobs\ntimeout: ${T}\n"
        "vars: {T: 3}\nsteps:\n  - send: END_JOB_NOTIFICATION\n    name: '$${literal}'\n"
    )
    sc = load_file(path, env={})
    assert sc.url == "http://127.0.0.1:1/jobs" and sc.timeout == 3.0
    assert sc.steps[0].name == "${literal}"
    sc = load_file(path, cli_vars={"T": "0.5"}, env={"BASE": "http://127.0.0.1:2"})
    assert sc.url == "http://127.0.0.1:2/jobs" and sc.timeout == 0.5
    sc = load_file(path, url="http://127.0.0.1:3/x", auth=Auth("authorization", authorization="Bearer z"), env={})
    assert sc.url == "http://127.0.0.1:3/x" and sc.auth.kind == "authorization"


def test_shipped_schema_is_valid_json_schema_and_describes_the_step_kinds():
    from jsonschema import Draft202012Validator

    s = schema()
    Draft202012Validator.check_schema(s)
    assert set(s["$defs"]["fault_step"]["properties"]["fault"]["enum"]) == {
        "bad_signature",
        "missing_signature",
        "wrong_key",
        "tampered_body",
        "duplicate",
        "replay",
        "out_of_order",
        "malformed_json",
        "missing_required_field",
        "wrong_content_type",
        "oversized_body",
    }
    json.dumps(s)


def test_unknown_kind_is_found_after_common_fields(tmp_path):
    text = "name: x\nplatform: accredit\nurl: http://127.0.0.1:1/\nsteps:\n  - name: first\n    sedn: Entity.Event\n"
    assert problems_of(tmp_path, "k.yaml", text) == [
        "k.yaml:6:5: unknown step kind 'sedn': a step starts with one of send, fault, expect, wait, repeat, await_call"
    ]


def test_variables_in_set_values_are_json_like_cli_set(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "name: x\nplatform: accessrc\nurl: http://127.0.0.1:1/\nsteps:\n"
        "  - send: APPLICATIONS_IMPORT_RESULT\n    set: {summary.totalRecords: '${N}', "
        "summary.failureCount: '${F}'}\n"
    )
    sc = load_file(path, cli_vars={"N": "120", "F": "5"}, env={})
    assert sc.steps[0].data["set"] == {"summary.totalRecords": 120, "summary.failureCount": 5}


@pytest.mark.parametrize(
    "mistake, message",
    [
        (
            "    retyr: {delays: [0]}\n",
            "m.yaml:9:5: unknown field 'retyr' in send step: did you mean 'retry'? (allowed:",
        ),
        ("    timeout: soon\n", "m.yaml:9:14: timeout: expected a number, got a string"),
        ("    retry: {delays: [0, 0, 0, 0, 0, 0]}\n", "m.yaml:9:12: retry: "),
    ],
)
def test_one_mistake_in_a_named_step_is_one_message(tmp_path, mistake, message):
    """A step that fails its own checks still defines its `as:` name (and counts as sent) for the steps after
    it, so `expect.of` and `${name.…}` references to it do not add false problems."""
    text = (
        "name: one mistake\nplatform: accessrc\nurl: http://127.0.0.1:9/h\nauth: {kind: hmac, secret: s}\n"
        "steps:\n  - send: DELIVERY_CHANNEL_STATUS_UPDATED\n    as: approved\n    name: approved\n"
        + mistake
        + '  - send: DELIVERY_REFUND_REQUESTED\n    headers: {X-Of: "${approved.payload.providerDeliveryChannelId}"}\n'
        "  - expect: {of: approved, status: 200}\n"
    )
    problems = problems_of(tmp_path, "m.yaml", text)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_a_misspelt_step_kind_with_a_name_is_one_message(tmp_path):
    text = (
        "name: one mistake\nplatform: accessrc\nurl: http://127.0.0.1:9/h\nauth: {kind: hmac, secret: s}\n"
        "steps:\n  - sned: DELIVERY_CHANNEL_STATUS_UPDATED\n    as: approved\n"
        "  - expect: {of: approved, status: 200}\n"
    )
    problems = problems_of(tmp_path, "m.yaml", text)
    assert problems == [
        "m.yaml:6:5: unknown step kind 'sned': a step starts with one of send, fault, expect, wait, repeat, await_call"
    ], problems


# -- limits (issue 14, items 2 and 8) -------------------------------------------------------------------------------
def alias_bomb(levels: int = 7, width: int = 9) -> str:
    """The classic "billion laughs": a list of `width` strings, then `levels - 1` lists of `width` aliases of the
    list before; 7 × 9 expands to 9**7 ≈ 4.8 million strings (the trial's: 34 s and 1.7 GB before the limit)."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{','.join(['lol'] * width)}]"]
    lines += [f"{names[i]}: &{names[i]} [{','.join(['*' + names[i - 1]] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_well_under_a_second_with_its_position(tmp_path):
    bomb = alias_bomb()
    assert len(bomb.encode()) < 300
    started = time.monotonic()
    problems = problems_of(tmp_path, "bomb.yaml", bomb)
    assert time.monotonic() - started < 0.5
    # the first list past 100,000 values: line 6 (9**6 = 531,441), where it starts (its anchor)
    assert problems == [
        "bomb.yaml:6:4: this value expands to more than 100,000 values (the limit; an alias counts "
        "as every value it repeats)"
    ]


def test_run_refuses_an_alias_bomb_with_exit_2_and_sends_nothing(tmp_path, start_receiver):
    srv = start_receiver("accessrc")
    path = tmp_path / "bomb.yaml"
    path.write_text(
        f"name: bomb\nplatform: accessrc\nurl: {srv.url}/hook\nsteps:\n  - send: DELIVERY_REFUND_REQUESTED\n"
        "    set:\n      " + alias_bomb().replace("\n", "\n      ").rstrip() + "\n"
    )
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(path), "--db", str(tmp_path / "x.db")])
    assert time.monotonic() - started < 2
    assert result.exit_code == 2, result.output
    assert f"{path}:12:10: this value expands to more than 100,000 values" in result.output
    assert srv.received == [] and not (tmp_path / "x.db").exists()


def test_a_file_with_a_few_aliases_still_loads(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "name: anchors\nplatform: accessrc\nurl: http://127.0.0.1:9/h\n"
        "auth: {kind: hmac, secret: &secret abcd1234}\n"
        "steps:\n"
        "  - send: DELIVERY_CHANNEL_STATUS_UPDATED\n"
        "    set: &approved {status: Approved, requestType: Delivery Channel Create}\n"
        "    expect: &ok {status: 200}\n"
        "  - send: DELIVERY_CHANNEL_STATUS_UPDATED\n    set: *approved\n    expect: *ok\n"
        "    headers: {X-Secret-Echo: *secret}\n"
    )
    sc = load_file(path, env={})
    assert [s.data["set"] for s in sc.steps] == [{"status": "Approved", "requestType": "Delivery Channel Create"}] * 2
    assert [s.data["expect"] for s in sc.steps] == [{"status": 200}] * 2
    assert sc.steps[1].data["headers"] == {"X-Secret-Echo": "abcd1234"}


def test_a_recursive_alias_is_refused_with_its_position(tmp_path):
    assert problems_of(tmp_path, "r.yaml", "name: r\nloop: &loop [1, [2, *loop]]\n") == [
        "r.yaml:2:21: alias *loop repeats a node that contains it (a recursive alias)"
    ]


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("flow.yaml", "[" * 5000 + "]" * 5000, "flow.yaml:1:65"),
        ("open.yaml", "[" * 100_000, "open.yaml:1:65"),
        ("block.yaml", "".join(" " * i + "k:\n" for i in range(1000)), "block.yaml:65:65"),
        ("seq.yaml", "- " * 5000 + "x\n", "seq.yaml:1:129"),
        ("deep.json", '{"a":' * 5000 + "1" + "}" * 5000, "deep.json:1:321"),
        ("list.json", "[" * 100_000, "list.json:1:65"),
    ],
)
def test_nesting_deeper_than_64_is_a_located_problem_not_a_recursion_error(tmp_path, name, text, where):
    problems = problems_of(tmp_path, name, text)
    assert problems == [f"{where}: lists and mappings nested deeper than 64 levels (the limit)"]


def test_an_alias_cannot_nest_deeper_than_the_limit_either(tmp_path):
    text = "x: &x " + "[" * 40 + "]" * 40 + "\ny: " + "[" * 40 + "*x" + "]" * 40 + "\n"
    assert problems_of(tmp_path, "n.yaml", text) == [
        "n.yaml:2:44: alias *x nests lists and mappings deeper than 64 levels (the limit)"
    ]


def test_64_levels_are_still_read(tmp_path):
    problems = problems_of(tmp_path, "ok.yaml", "name: " + "[" * 63 + "]" * 63 + "\n")
    assert problems and all("nested deeper" not in p for p in problems)


def test_scenario_text_over_1_mib_is_refused_before_it_is_parsed(tmp_path):
    text = "name: big\n# " + "x" * (1024 * 1024) + "\n"
    assert problems_of(tmp_path, "big.yaml", text) == [
        f"big.yaml:1:1: a scenario is at most 1,048,576 bytes (1 MiB); this one is {len(text):,}"
    ]
    with pytest.raises(ScenarioFileError, match="at most 1,048,576 bytes"):
        load_text(text, "posted.yaml", env={})


TYPO = """\
name: A field the documents do not show
platform: accessrc
url: URL
steps:
  - send: DELIVERY_CHANNEL_STATUS_UPDATED
    set:
      statuss: Approved
"""


def test_a_set_that_adds_a_field_is_a_note_not_a_problem_and_refused_with_strict(tmp_path, start_receiver, keys_dir):
    """Issue 12: an added field breaks only an inferred rule (no-extra-fields): the typo is shown, the step sent; with
    `run --strict` it is refused (exit 2), naming the rule."""
    srv = start_receiver("accessrc")
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO.replace("URL", srv.url + "/hook"))
    note = (
        f"{path}:7:7: set statuss: statuss: extra field 'statuss', not in the documents "
        "(inferred rule accessrc.payload.no-extra-fields) (DELIVERY_CHANNEL_STATUS_UPDATED)"
    )
    assert load_file(path, env={}).notes == [note]
    args = ["run", str(path), "--db", str(tmp_path / "x.db"), "--keys-dir", str(keys_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert note.replace(": set ", ": note: set ", 1) + " - advice only (refused with --strict)" in result.output
    assert [json.loads(r.body)["statuss"] for r in srv.received] == ["Approved"]
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 2 and f"{note} - refused: --strict" in strict.output
    assert "1 problem(s); nothing was sent" in strict.output and len(srv.received) == 1
