"""scripts/test, the one documented test command: in a ready venv it installs nothing and hands over to pytest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test"


def test_the_script_is_executable_and_ci_ends_with_it():
    assert os.access(SCRIPT, os.X_OK)
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == "scripts/test"


def test_in_a_ready_venv_it_installs_nothing_and_runs_pytest_with_the_arguments_given(tmp_path):
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    if shutil.which("chromium", path=env["PATH"]) is None:  # this test is about the extras, not the browser
        stub = tmp_path / "bin"
        stub.mkdir()
        (stub / "chromium").write_text("#!/bin/sh\nexit 0\n")
        (stub / "chromium").chmod(0o755)
        env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [str(SCRIPT), "--collect-only", "-q", "-p", "no:cacheprovider", "tests/test_readme.py"],
        cwd=tmp_path,  # from any folder: the script works in the clone
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installing" not in done.stderr and "creating .venv" not in done.stderr, done.stderr
    assert "tests/test_readme.py" in done.stdout  # collected by the pytest it handed over to
