"""Every ```sh block of README.md and docs/*.md runs, in order, as one shell script per file.

Each file runs in a fresh temp folder (its own ACCESSRC_SIM_HOME, so its own keys and database) with the repository's
`scenarios/` beside it, as a reader in a checkout would have it, and with `BASE` — the one place each walk-through sets
its ports — exported as the first of ten free ports on 127.0.0.1. Commands the docs start with `&` must still be
running at the end (a server that died is a failure); the harness then ends the script's process group.

Not run, on purpose, each for the reason given beside it:
- README's "Set up" blocks: the install is what `.ci/run` performs from scratch and `scripts/test` is the test run
  itself; tests/test_readme.py checks both against `.ci/run`.
- ```console blocks: commands that need what CI does not have (see CONSOLE_BLOCKS).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# ```console blocks, per file, with why they are not run. Keep this short: a command belongs in an ```sh block.
CONSOLE_BLOCKS = {
    "docs/operations.md": [
        "docker build",  # no Docker engine on CI machines: tests/test_dockerfile.py replays the image's steps
    ],
}

BG = re.compile(r"(?<!&)&\s*(#.*)?$")
FILE_MARK = re.compile(r"^(?:#|//) file: (\S+)")


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.S | re.M)


def sh_blocks(path: Path) -> list[str]:
    text = path.read_text("utf-8")
    if path.name == "README.md":
        start = text.index("## Set up")
        text = text[:start] + text[text.index("\n## ", start + 1) :]
    return blocks(text, "sh")


def script_for(path: Path) -> str:
    lines = ["set -eo pipefail", "_bg=()"]
    for block in sh_blocks(path):
        for line in block.splitlines():
            lines.append(line)
            if BG.search(line):
                lines.append("_bg+=($!)")
    lines.append("sleep 0.3")
    lines.append(
        'for p in "${_bg[@]}"; do kill -0 "$p" 2>/dev/null || { wait "$p"; '
        'echo "a background command (pid $p) had ended, exit $?" >&2; exit 97; }; done'
    )
    return "\n".join(lines) + "\n"


def free_base(count: int = 10) -> int:
    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def code_files(path: Path) -> dict[str, str]:
    """Blocks that open with `# file: NAME` (or `// file: NAME`) are files the walk-through uses."""
    found = {}
    for block in re.findall(r"^```\w+\n(.*?)^```$", path.read_text("utf-8"), re.S | re.M):
        match = FILE_MARK.match(block)
        if match:
            found[match.group(1)] = block
    return found


def documents_with_commands() -> list[Path]:
    return [p for p in DOCS if sh_blocks(p)]


@pytest.mark.slow
@pytest.mark.parametrize("doc", documents_with_commands(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_of_the_document_runs(doc: Path, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "scenarios").symlink_to(ROOT / "scenarios")
    for name, code in code_files(doc).items():
        (work / name).write_text(code, "utf-8")
    (tmp_path / "doc.sh").write_text(script_for(doc), "utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ACCESSRC_SIM_") and k not in ("PYTHONPATH", "BASE", "SIM", "RECEIVER")
    }
    env.update(
        ACCESSRC_SIM_HOME=str(tmp_path / "home"),
        BASE=str(free_base()),
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
    )
    log = tmp_path / "doc.log"
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["bash", str(tmp_path / "doc.sh")],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=150)
        except subprocess.TimeoutExpired:
            code = "timeout"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait(10)
            time.sleep(0.2)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    output = log.read_text(errors="replace")
    assert code == 0, f"{doc.name}: exit {code} after {time.monotonic() - started:.1f} s\n{output[-6000:]}"


def test_console_blocks_are_the_few_listed():
    for doc in DOCS:
        rel = str(doc.relative_to(ROOT))
        found = blocks(doc.read_text("utf-8"), "console")
        expected = CONSOLE_BLOCKS.get(rel, [])
        assert len(found) == len(expected), (rel, found)
        for block, marker in zip(found, expected, strict=True):
            assert marker in block, (rel, marker, block)


def test_every_shell_block_is_sh_or_console():
    """A command block under another name (```bash, ```shell, none) would silently escape the run above."""
    for doc in DOCS:
        text = doc.read_text("utf-8")
        for lang in ("bash", "shell", "zsh"):
            assert not blocks(text, lang), (doc.name, lang)


def test_walkthroughs_set_their_ports_in_one_place():
    for doc in documents_with_commands():
        script = "\n".join(sh_blocks(doc))
        assert len(re.findall(r"^BASE=", script, re.M)) <= 1, doc.name
        assert not re.search(r"127\.0\.0\.1:\d{2,5}", script), (doc.name, "a fixed port: use $BASE")
        assert not re.search(r"--port \d", script), (doc.name, "a fixed port: use $BASE")


def test_the_tools_the_docs_call_are_here():
    for tool in ("bash", "curl", "python3"):
        assert shutil.which(tool), tool
