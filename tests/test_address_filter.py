"""The fetcher's address filter: only public unicast addresses, also when an IPv6 address carries an
IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, NAT64).

No test here sends a request: the filter is called directly, and through `SafeFetcher.check`
(which resolves and checks, and never connects) with a tripwire on every socket connection.
The special-purpose blocks below are written out from the IANA registries, not taken from the code.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.ingest.addresses import refused_address
from retrieval.ingest.fetch import FetchError, FetchLimits, SafeFetcher

# IANA IPv4 Special-Purpose Address Registry, with 224/4 (multicast) and 240/4 (reserved).
IANA_IPV4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
SPECIAL_V4 = [ipaddress.IPv4Network(block) for block in IANA_IPV4]
# IPv6 blocks refused whatever they hold (IANA IPv6 Special-Purpose Registry, site-local, multicast).
SPECIAL_V6 = [
    ipaddress.IPv6Network(block)
    for block in (
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2620:4f:8000::/48",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]


def in_block(blocks: list) -> st.SearchStrategy:
    """Any address in any of `blocks`."""
    return st.sampled_from(blocks).flatmap(
        lambda block: st.integers(int(block.network_address), int(block.broadcast_address)).map(
            lambda number: ipaddress.ip_address(number) if block.version == 4 else ipaddress.IPv6Address(number)
        )
    )


PRIVATE_V4 = in_block(SPECIAL_V4)
PUBLIC_V4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address).filter(lambda a: not any(a in b for b in SPECIAL_V4))
ANY_80_BITS = st.integers(0, 2**80 - 1)


def mapped(v4: ipaddress.IPv4Address, _rest: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0xFFFF << 32) | int(v4))


def compatible(v4: ipaddress.IPv4Address, _rest: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(v4))


def six_to_four(v4: ipaddress.IPv4Address, rest: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | rest)


def nat64(v4: ipaddress.IPv4Address, _rest: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0x64FF9B << 96) | int(v4))


def local_nat64(length: int):
    """NAT64 under the local-use prefix 64:ff9b:1::/48, the IPv4 address placed as RFC 6052 says for a
    prefix of `length` bits: split around bits 64-71 (always zero) for /48 and /56, after them for
    /64, in the last 32 bits for /96."""
    base = 0x0064FF9B0001 << 80

    def form(v4: ipaddress.IPv4Address, _rest: int = 0) -> ipaddress.IPv6Address:
        if length == 96:
            return ipaddress.IPv6Address(base | int(v4))
        before = 64 - length  # bits of the IPv4 address before bit 64
        after = 32 - before  # and after bit 71
        high, low = int(v4) >> after, int(v4) & ((1 << after) - 1)
        return ipaddress.IPv6Address(base | (high << 64) | (low << (56 - after)))

    form.__name__ = f"local_nat64_{length}"
    return form


FORMS_LEADING_TO_IPV4 = [mapped, compatible, six_to_four, nat64]
LOCAL_NAT64 = [local_nat64(length) for length in (48, 56, 64, 96)]


@settings(max_examples=300)
@given(v4=PRIVATE_V4, form=st.sampled_from(FORMS_LEADING_TO_IPV4 + LOCAL_NAT64), rest=ANY_80_BITS)
def test_every_special_ipv4_address_is_refused_in_every_ipv6_form(v4, form, rest):
    assert refused_address(v4), v4
    assert refused_address(form(v4, rest)), (v4, form.__name__, form(v4, rest))


@settings(max_examples=300)
@given(v4=PUBLIC_V4, form=st.sampled_from(FORMS_LEADING_TO_IPV4), rest=ANY_80_BITS)
def test_a_public_ipv4_address_passes_alone_and_in_the_forms_that_lead_to_it(v4, form, rest):
    assert not refused_address(v4), v4
    assert not refused_address(form(v4, rest)), (v4, form.__name__, form(v4, rest))


@settings(max_examples=100)
@given(v4=PUBLIC_V4, form=st.sampled_from(LOCAL_NAT64))
def test_local_use_nat64_is_refused_whatever_it_embeds(v4, form):
    address = form(v4)
    assert address in ipaddress.IPv6Network("64:ff9b:1::/48")
    assert refused_address(address)


@settings(max_examples=300)
@given(address=in_block(SPECIAL_V6))
def test_every_special_purpose_ipv6_address_is_refused(address):
    assert refused_address(address), address


@settings(max_examples=300)
@given(number=st.integers(0x2000 << 112, (0x4000 << 112) - 1))
def test_global_unicast_ipv6_outside_the_special_blocks_passes(number):
    address = ipaddress.IPv6Address(number)
    if any(address in block for block in SPECIAL_V6) or address in ipaddress.IPv6Network("2002::/16"):
        return  # refused above, or 6to4 (decided by the IPv4 address it carries)
    assert not refused_address(address), address


@pytest.mark.parametrize(
    "text",
    [
        "192.0.0.1",  # IETF protocol assignments
        "192.0.0.9",  # PCP anycast: globally reachable per IANA, still no news site
        "198.18.0.1",  # benchmarking
        "100.64.0.1",  # carrier-grade NAT
        "255.255.255.255",
        "::ffff:169.254.169.254",  # IPv4-mapped metadata address
        "::169.254.169.254",  # IPv4-compatible
        "::ffff:0:a00:1",  # IPv4-translated (SIIT)
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64
        "fec0::1",  # site-local
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "3fff::1",  # documentation
    ],
)
def test_named_special_addresses_are_refused(text):
    assert refused_address(ipaddress.ip_address(text))


@pytest.mark.parametrize(
    "text", ["93.184.216.34", "::ffff:93.184.216.34", "2002:5db8:d822::1", "64:ff9b::5db8:d822", "2606:4700::1111"]
)
def test_public_addresses_pass(text):
    assert not refused_address(ipaddress.ip_address(text))


@pytest.fixture()
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize("address", ["2002:a00:1::1", "64:ff9b::a9fe:a9fe", "::ffff:192.168.1.1", "fec0::1"])
def test_a_name_resolving_to_an_embedded_private_address_is_refused_before_connecting(no_connections, address):
    fetcher = SafeFetcher(FetchLimits(), resolver=lambda host, port: [address])
    with pytest.raises(FetchError, match=r"news\.example \(.*\) is a private"):
        fetcher.check("http://news.example/")


def test_a_name_resolving_to_nat64_of_a_public_address_is_let_through_unconnected(no_connections):
    fetcher = SafeFetcher(FetchLimits(), resolver=lambda host, port: ["64:ff9b::5db8:d822"])
    target = fetcher.check("https://news.example/today")
    assert target.url == "https://[64:ff9b::5db8:d822]/today" and target.host_header == "news.example"
