"""The README's first screen promises two commands; CI runs exactly the test one."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    install, tests = quick_start_blocks()[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests == "python -m pytest -q"
    assert ci.rstrip().splitlines()[-1] == tests
    assert "pip install -e '.[test]'" in install and "pip install --quiet -e '.[test]'" in ci


def test_install_command_starts_the_simulator_on_embedded_defaults():
    install = quick_start_blocks()[0]
    assert install.startswith("python3 -m venv .venv") and install.endswith("accessrc-sim serve --demo")
