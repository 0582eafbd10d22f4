"""A stranger's relay URL may lead only to the public internet: literals, names, DNS answers."""

import pytest

from pigeon.transport.public_only import PublicOnlyResolver, is_public_address, is_public_url


@pytest.mark.parametrize(
    "url",
    [
        "wss://relay.example.org/v1",
        "ws://relay.example.org:8080/v1",
        "wss://8.8.8.8/v1",
        "wss://[2001:4860:4860::8888]/v1",
        "wss://RELAY.Example.ORG./v1",
    ],
)
def test_public_urls_pass(url: str) -> None:
    assert is_public_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:8080/v1",
        "ws://10.0.0.1/v1",
        "ws://192.168.1.1/v1",
        "ws://172.16.0.5/v1",
        "ws://169.254.1.1/v1",
        "ws://100.64.0.1/v1",  # carrier-grade NAT
        "ws://0.0.0.0/v1",
        "ws://224.0.0.1/v1",
        "ws://[::1]/v1",
        "ws://[fe80::1]/v1",
        "ws://[fd00::1]/v1",
        "ws://[::ffff:192.168.1.1]/v1",
        "ws://localhost/v1",
        "ws://router/v1",
        "ws://printer.local/v1",
        "ws://x.localhost/v1",
        "ws://nas.lan/v1",
        "ws://hub.home.arpa/v1",
        "ws://svc.internal/v1",
        "ws:///v1",
        "ws://[zz/v1",
    ],
)
def test_local_urls_are_refused(url: str) -> None:
    assert not is_public_url(url)


def test_addresses() -> None:
    assert is_public_address("1.1.1.1")
    assert not is_public_address("127.0.0.53")
    assert not is_public_address("not an address")


async def test_the_resolver_removes_local_answers() -> None:
    resolver = PublicOnlyResolver()
    try:
        # Numeric hosts resolve without any DNS query, so nothing leaves this machine.
        answers = await resolver.resolve("8.8.8.8", 443)
        assert [a["host"] for a in answers] == ["8.8.8.8"]
        with pytest.raises(OSError, match="no public address"):
            await resolver.resolve("127.0.0.1", 443)
    finally:
        await resolver.close()
