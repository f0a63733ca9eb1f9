"""Start-up structure: which modules a command loads (how long it takes is measured in bench/bench.py, not here).

`accessrc-sim events` lists the catalogue; it must not pay for the HTTP stack, Faker, jsonschema, YAML or the server.
The group imports a command's module only when that command runs, yet its help lists every command.
"""

import inspect
import json
import os
import subprocess
import sys

import click

from simulator.cli import COMMANDS, docstring, main

# Runs `accessrc-sim ARGS...` in a fresh interpreter, then prints (on stderr, as JSON) the modules the command added
# to those Python itself starts with: third-party top-level packages, and simulator modules.
PROBE = """
import json, sys
before = set(sys.modules)
sys.argv = ["accessrc-sim", *sys.argv[1:]]
from simulator.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
added = set(sys.modules) - before
third = sorted({m.split(".")[0] for m in added if not m.startswith("simulator")} - set(sys.stdlib_module_names))
ours = sorted(m for m in added if m == "simulator" or m.startswith("simulator."))
print(json.dumps({"code": code, "third_party": third, "simulator": ours}), file=sys.stderr)
"""


def probe(*args: str) -> tuple[str, dict]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_events_imports_click_and_the_catalogue_only():
    out, loaded = probe("events")
    assert loaded["code"] in (None, 0)
    assert "BadgeExportZipFile.Created" in out  # it did list the catalogue
    assert loaded["third_party"] == ["click"]  # no faker, jsonschema, requests, urllib3, yaml, cryptography, flask
    allowed = {"simulator", "simulator.cli", "simulator.cli.events", "simulator.limits"}
    extra = [m for m in loaded["simulator"] if m not in allowed and not m.startswith("simulator.catalogue")]
    assert extra == []
    assert "simulator.catalogue" in loaded["simulator"]


def test_events_json_and_platform_filter_stay_as_light():
    out, loaded = probe("events", "--json", "--platform", "accredit")
    assert {e["platform"] for e in json.loads(out)} == {"accredit"}
    assert loaded["third_party"] == ["click"]


def test_the_group_help_imports_no_command_module_and_lists_every_command():
    out, loaded = probe("--help")
    assert loaded["code"] in (None, 0)
    assert [m for m in loaded["simulator"] if m.startswith("simulator.cli.")] == []
    assert loaded["third_party"] == ["click"]
    for name in COMMANDS:
        assert f"\n  {name} " in out, name


def test_the_docstring_read_from_source_is_each_command_s_help():
    """What the group's help shows without importing a command is that command's own help."""
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert docstring(name) == inspect.cleandoc(command.help), name
        assert click.Command(name, help=docstring(name)).get_short_help_str(80) == command.get_short_help_str(80)


def test_the_lazy_help_is_the_same_as_with_every_command_loaded():
    def group_help(first: str) -> str:
        code = f"from simulator.cli import main; {first}; main(['--help'], prog_name='accessrc-sim')"
        env = dict(os.environ, COLUMNS="100")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env).stdout

    lazy, loaded = group_help("pass"), group_help("main.load_all()")
    assert "Commands:" in lazy and "  verify " in lazy
    assert lazy == loaded


def test_a_command_s_own_help_loads_it():
    out, loaded = probe("send", "--help")
    assert loaded["code"] in (None, 0)
    assert "--url" in out
    assert "simulator.cli.send" in loaded["simulator"]


def test_an_unknown_command_is_a_usage_error():
    out, loaded = probe("nope")
    assert loaded["code"] == 2
