"""The package as a stranger gets it: a wheel built from the sources, installed (not editable) in a folder of its
own, holding every file the code reads, typed for mypy (PEP 561), and its pytest plugin usable from a test file.

The wheel is built from a copy of the sources (pyproject.toml, README.md, simulator/) so no stale build/ folder of
the checkout can slip a file into it. The stranger's runs put that folder first on PYTHONPATH: the checkout's
editable install (a finder appended to sys.meta_path by a .pth file) only answers what the path does not, and each
run asserts the simulator it imported is the installed one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "simulator"
pytestmark = pytest.mark.slow  # builds a wheel (a few seconds)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(PACKAGE, src / "simulator", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("accessrc_sim-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def stranger_env(target: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSRC_SIM_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    env["ACCESSRC_SIM_HOME"] = str(home)  # a key pair made in the simulator's data folder would show here
    return env


def test_the_wheel_holds_every_file_the_code_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert shipped - names == set(), "add these to [tool.setuptools.package-data] in pyproject.toml"
    for needed in (
        "simulator/py.typed",
        "simulator/catalogue/schemas/accessrc.DELIVERY_REQUEST_SENT.json",
        "simulator/catalogue/examples/accredit.Entity.Event.json",
        "simulator/dashboard/static/favicon.svg",
        "simulator/dashboard/static/dashboard.js",
        "simulator/dashboard/templates/dashboard/index.html",
        "simulator/rules/delivery.yaml",
        "simulator/rules/payload.yaml",
        "simulator/scenarios/schema.json",
        "simulator/api/openapi.json",
        "simulator/shipped_scenarios/conformance/accessrc/credentials.yaml",
        "simulator/shipped_scenarios/accessrc/receiver-defences.yaml",
    ):
        assert needed in names, needed
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]\naccessrc_sim = simulator.pytest_plugin" in text


STRANGER_TEST = """
import base64
import hashlib
import hmac

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask, request

SECRET = "abcd1234"


def create_app(accredit_public_pem):
    app = Flask(__name__)
    public_key = serialization.load_pem_public_key(accredit_public_pem.encode("ascii"))

    @app.post("/accessrc")
    def accessrc():
        body = request.get_data()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-signature", "")):
            return {"error": "bad signature"}, 401
        return {"ok": True}, 200

    @app.post("/accredit")
    def accredit():
        try:
            signature = base64.b64decode(request.headers.get("X-Signature", ""), validate=True)
            public_key.verify(signature, request.get_data(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return {"error": "bad signature"}, 401
        return {"ok": True}, 200

    return app


@pytest.fixture
def client(accessrc_sender):
    return create_app(accessrc_sender("accredit").public_key_pem).test_client()


def test_accessrc_hmac(client, accessrc_sender):
    genuine = accessrc_sender("accessrc", hmac_secret=SECRET).request("DELIVERY_REQUEST_SENT")
    assert client.post("/accessrc", data=genuine.body, headers=genuine.headers).status_code == 200
    wrong = accessrc_sender("accessrc", hmac_secret="not-it").request("DELIVERY_REQUEST_SENT")
    assert client.post("/accessrc", data=wrong.body, headers=wrong.headers).status_code == 401


def test_accredit_rsa(client, accessrc_sender, tmp_path):
    genuine = accessrc_sender("accredit").request("BadgeExportZipFile.Created")
    assert client.post("/accredit", data=genuine.body, headers=genuine.headers).status_code == 200
    other = accessrc_sender("accredit", keys_dir=tmp_path / "other").request("BadgeExportZipFile.Created")
    assert client.post("/accredit", data=other.body, headers=other.headers).status_code == 401
"""

RUN_AND_SAY_WHICH = (
    "import sys, pytest\n"
    "code = pytest.main(['-q', '-p', 'no:cacheprovider', 'test_stranger.py'])\n"
    "print('USED', sys.modules['simulator'].__file__, sys.modules['simulator.pytest_plugin'].__file__)\n"
    "sys.exit(code)\n"
)


def test_a_strangers_flask_test_passes_with_the_installed_wheel(installed, tmp_path):
    (tmp_path / "test_stranger.py").write_text(STRANGER_TEST, "utf-8")
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_SAY_WHICH],
        cwd=tmp_path,
        env=stranger_env(installed, home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout, done.stdout
    used = done.stdout.split("USED ", 1)[1].split()
    assert all(Path(f).resolve().is_relative_to(installed.resolve()) for f in used), (used, installed)
    assert not home.exists()  # the fixture kept Accredit's keys in the tests' tmp_path


USER_OK = """
from flask import Flask, request

from simulator.testing import FAULTS, Sender, SenderFactory, SignedRequest

app = Flask(__name__)


@app.post("/hook")
def hook() -> tuple[str, int]:
    Sender("accessrc", hmac_secret="s").verify(request.headers, request.get_data())  # Flask's headers object
    return "", 200


def test_typed(accessrc_sender: SenderFactory) -> None:
    req: SignedRequest = accessrc_sender("accessrc", hmac_secret="s").request("DELIVERY_REQUEST_SENT", seed=1)
    body: bytes = req.body
    headers: dict[str, str] = req.headers
    retries: list[SignedRequest] = Sender("accredit", keys_dir="k").attempts("Entity.Event", n=2)
    forged = accessrc_sender("accredit").fault(FAULTS[0], "Entity.Event")
    Sender("accredit").verify(forged.headers, body)
    pem: str = Sender("accredit").public_key_pem
    names: list[str] = Sender("reachfive").events()
    assert headers and retries and pem and names
"""

USER_WRONG = """
from simulator.testing import Sender, SenderFactory


def test_wrong(accessrc_sender: SenderFactory) -> None:
    Sender("accessrc", hmac_secret=123)
    req = accessrc_sender("accessrc").request("DELIVERY_REQUEST_SENT")
    n: int = req.body
    accessrc_sender("accessrc", hmac_secret=b"bytes")
"""


def test_mypy_checks_a_users_code_against_the_installed_package(installed, tmp_path):
    """py.typed ships, so mypy reads the installed package's annotations: correct use passes --strict, wrong
    argument and result types are reported (the fixture's type is SenderFactory)."""
    (tmp_path / "user_ok.py").write_text(USER_OK, "utf-8")
    (tmp_path / "user_wrong.py").write_text(USER_WRONG, "utf-8")

    def mypy(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull, name],
            cwd=tmp_path,
            env=stranger_env(installed, tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=300,
        )

    ok = mypy("user_ok.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = mypy("user_wrong.py")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    out = wrong.stdout
    assert 'user_wrong.py:6: error: Argument "hmac_secret" to "Sender" has incompatible type "int"' in out, out
    assert 'user_wrong.py:8: error: Incompatible types in assignment (expression has type "bytes", variable has' in out
    assert 'user_wrong.py:9: error: Argument "hmac_secret" to "__call__" of "SenderFactory" has incompatible' in out
    assert "Found 3 errors in 1 file" in out, out


def test_the_librarys_own_modules_pass_mypy_strict():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            "simulator/testing.py",
            "simulator/pytest_plugin.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_installed_wheel_finds_its_conformance_sets_and_shipped_scenarios(installed, tmp_path):
    """`accessrc-sim conformance` and the dashboard's scenario list read the shipped scenarios: an installed wheel
    (no checkout beside it) carries them, every file of the checkout's scenarios/."""
    script = (
        "import sys\n"
        "from simulator.scenarios import conformance\n"
        "from simulator.auth import Auth\n"
        "folder = conformance.default_dir()\n"
        "auth = Auth(kind='hmac', secret='s')\n"
        "plan = conformance.plan('accessrc', 'http://127.0.0.1:9/hook', auth, 1.0)\n"
        "print('DIR', folder)\n"
        "print('FILES', sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*.yaml')))\n"
        "print('ROWS', len(plan.rows))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=stranger_env(installed, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = Path(done.stdout.split("DIR ", 1)[1].split("\n", 1)[0])
    assert folder.is_relative_to(installed.resolve()), folder
    files = eval(done.stdout.split("FILES ", 1)[1].split("\n", 1)[0])
    assert files == sorted(p.relative_to(ROOT / "scenarios").as_posix() for p in (ROOT / "scenarios").rglob("*.yaml"))
    assert int(done.stdout.split("ROWS ", 1)[1].split()[0]) > 0
