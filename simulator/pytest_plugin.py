"""pytest plugin (entry point `pytest11`, loaded when accessrc-sim is installed): the `accessrc_sender` fixture.

def test_hook(client, accessrc_sender):
    req = accessrc_sender("accessrc", hmac_secret="s3cr3t").request("DELIVERY_REQUEST_SENT")
    assert client.post("/hook", data=req.body, headers=req.headers).status_code == 200
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the library is imported when the fixture is used, not when pytest starts
    from .testing import Sender


@pytest.fixture
def accessrc_sender(tmp_path) -> Callable[..., Sender]:
    """A factory of `simulator.testing.Sender`: `accessrc_sender("accredit")`, `accessrc_sender("accessrc",
    hmac_secret="s")`. Accredit's key pair is made in `tmp_path / "accessrc-sim-keys"` (this test's temporary
    folder) unless `keys_dir=` is given, so every Sender of one test shares it."""
    from .testing import Sender

    def make(platform: str = "accessrc", **options: Any) -> Sender:
        if options.get("keys_dir") is None:
            options["keys_dir"] = tmp_path / "accessrc-sim-keys"
        return Sender(platform, **options)

    return make
