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


def section(title: str) -> str:
    return README.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_names_every_choice_made_where_the_documents_are_silent():
    """Each inferred rule is covered by a row of the README's table of our choices (its Rules column), and each
    pattern there names at least one inferred rule, so a new choice cannot go unsaid and a stale row cannot stay."""
    from fnmatch import fnmatchcase

    from simulator import rules

    table = section("### Our choices where the documents are silent")
    rules_column = [line.rsplit("|", 2)[-2] for line in table.splitlines() if line.startswith("| ")]
    patterns = re.findall(r"`([a-z*][\w.*-]*)`", "\n".join(rules_column))
    inferred = [rule.id for rule in rules.all_rules() if not rule.documented]
    assert len(patterns) >= 10 and inferred
    unsaid = [rule_id for rule_id in inferred if not any(fnmatchcase(rule_id, p) for p in patterns)]
    assert not unsaid, f"inferred rules the README's table does not name: {unsaid}"
    stale = [p for p in patterns if not any(fnmatchcase(rule_id, p) for rule_id in inferred)]
    assert not stale, f"README patterns naming no inferred rule: {stale}"


def test_readme_says_what_each_accessrc_success_echoes():
    from simulator import catalogue

    table = section("### What an AccessRC success must echo in `data`")
    for spec in catalogue.events("accessrc"):
        assert f"`{spec.name}`" in table, spec.name


def test_readme_guarantees_carry_the_numbers_the_code_uses():
    from simulator import limits, services
    from simulator.api import scenario_runs, session
    from simulator.store import jobs

    text = section("## Guarantees")
    mib = 1024 * 1024
    expected = {
        f"**{limits.CONNECTION_LIMIT:,}**",
        f"**{limits.IDLE_TIMEOUT} s**",
        f"**{limits.MAX_DEPTH}** levels",
        f"**{limits.MAX_NODES:,}** values",
        f"**{limits.MAX_SCENARIO_BYTES // mib} MiB** of text",
        f"**{scenario_runs.MAX_TEXT // 1024} KiB**",
        f"**{jobs.STORED_BODY_CAP // 1024} KiB**",
        f"**{int(jobs.LEASE_SECONDS)} s** lease",
        f"past **{limits.BODY_CAP_FACTOR} MiB**",
        f"at most **{services.MAX_GENERATED_BODY // mib} MiB** of it",
        f"at most **{int(session.SESSION_LIFETIME // 3600)} h**",
    }
    missing = [figure for figure in expected if figure not in text]
    assert not missing, missing
