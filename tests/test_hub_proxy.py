"""Wrong-key limits behind a reverse proxy (issue 16): every request came from the proxy's address, so one
client's wrong keys locked out everybody behind it (and a forged X-Forwarded-For from a direct client must
not dodge the limit). With `listen.trusted_proxies` the client is the last forwarded hop that is not a proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api.guard import client_address
from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key


def test_client_address():
    import ipaddress

    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]
    assert client_address("127.0.0.1", "203.0.113.7", proxies) == "203.0.113.7"
    assert client_address("10.1.1.1", "198.51.100.9, 203.0.113.7, 10.2.2.2", proxies) == "203.0.113.7"
    assert client_address("198.51.100.1", "1.2.3.4", proxies) == "198.51.100.1"  # not a proxy: its word is not taken
    assert client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", "203.0.113.7", []) == "127.0.0.1"


def test_trusted_proxies_are_addresses():
    with pytest.raises(ValueError, match="not an IP address or network"):
        HubConfig(listen={"trusted_proxies": ["proxy.local"]})


@pytest.mark.parametrize("trusted,locked_out", [([], True), (["127.0.0.1"], False)])
def test_one_client_behind_the_proxy_does_not_lock_out_the_others(tmp_path, trusted, locked_out):
    """Without trusted_proxies (the old behaviour) the second client behind the proxy gets 429 too."""
    keys = [ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key("good-key"))]
    cfg = HubConfig(database=f"sqlite:///{tmp_path / 'h.sqlite'}", keys=keys,
                    listen={"trusted_proxies": trusted}, limits={"auth_failures": 5}).resolved(Path("configs"))
    app = create_app(cfg, run_scheduler=False)
    with TestClient(app, client=("127.0.0.1", 40000)) as c:  # the proxy's connection
        def get(key: str, who: str) -> int:
            return c.get("/api/v1/me", headers={"Authorization": f"Bearer {key}",
                                                "X-Forwarded-For": who}).status_code
        assert [get("wrong", "203.0.113.7") for _ in range(6)][-1] == 429  # the guesser is stopped either way
        other = get("good-key", "198.51.100.9")
        assert other == (429 if locked_out else 200)
