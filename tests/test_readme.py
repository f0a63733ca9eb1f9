"""The README is the front door: two set-up commands on its first screen (CI runs exactly the test one), a table of
contents, at most 250 lines, and links that lead somewhere. Its commands run in tests/test_docs.py."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")


def set_up_blocks() -> list[str]:
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    tests = set_up_blocks()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests == "scripts/test"
    assert ci.rstrip().splitlines()[-1] == tests


def test_install_command_is_plain_and_starts_the_simulator():
    install = set_up_blocks()[0]
    assert install == "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && accessrc-sim serve --demo"


def test_set_up_is_on_the_first_screen():
    assert README.index("## Set up") < README.index("## The 5-minute tour")
    assert len(README[: README.index("scripts/test")].splitlines()) <= 50


def test_readme_is_short_with_a_table_of_contents():
    assert len(README.splitlines()) <= 250
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    anchors = re.findall(r"\]\(#([^)]+)\)", contents)
    headings = {slug(h) for h in re.findall(r"^#{2,3} (.+)$", README, re.M)}
    assert anchors and set(anchors) <= headings, set(anchors) - headings


def test_relative_links_lead_to_files_and_headings():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text("utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            assert linked.exists(), (doc.name, target)
            if anchor and linked.suffix == ".md":
                headings = {slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text("utf-8"), re.M)}
                assert anchor in headings, (doc.name, target)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")
