"""Which IP addresses a fetch may connect to: only public unicast ones.

The `ipaddress` module's properties (private, loopback, link-local, multicast, reserved,
unspecified, not global) are not enough on their own: they differ between Python versions and
miss blocks, so an explicit table of the IANA special-purpose registries (IPv4 and IPv6) and
the deprecated site-local block is checked too, whatever the Python version.

IPv6 addresses that carry an IPv4 address reach that IPv4 host through a translator or a
tunnel, so it is the embedded address that is checked (a public one passes, a private one is
refused, whatever the IPv6 wrapper's own status):

- IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible `::a.b.c.d` (which makes `::1` and `::`
  loopback and unspecified, as they are);
- 6to4 `2002:AABB:CCDD::/48`, the IPv4 address in bits 16-47;
- NAT64 with the well-known prefix `64:ff9b::/96`, the IPv4 address in the last 32 bits.

The local-use NAT64 block `64:ff9b:1::/48` is refused whole: it is local by definition (RFC
8215), and its translator may take the IPv4 address from any of the positions of RFC 6052
(after a /48, /56, /64 or /96 prefix), so no one reading of the address can be trusted. Teredo
(`2001::/32`) lies in the refused `2001::/23`.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IANA IPv4 Special-Purpose Address Registry, every entry (also those marked globally
# reachable: anycast relays and AS112 servers are no news sites), and the rest of 240/4.
SPECIAL_IPV4 = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (DS-Lite, PCP and TURN anycast, NAT64 discovery)
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.31.196.0/24",  # AS112-v4
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # direct delegation AS112 service
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast 255.255.255.255
    )
)

# The IANA IPv6 Special-Purpose Address Registry, site-local and multicast; the blocks that embed
# an IPv4 address are handled apart (see the module's docstring).
SPECIAL_IPV6 = tuple(
    ipaddress.IPv6Network(block)
    for block in (
        "::/8",  # reserved by the IETF: loopback, unspecified and the IPv4 forms checked apart
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy IPv6 prefix
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, benchmarking, AMT, AS112...)
        "2001:db8::/32",  # documentation
        "2620:4f:8000::/48",  # direct delegation AS112 service
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside sites)
        "ff00::/8",  # multicast
    )
)
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, compatible, 6to4, well-known NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in COMPATIBLE or address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


def refused_address(address: IPAddress) -> bool:
    """True for every address that is not public unicast: loopback, private, shared, link-local (cloud
    metadata), site-local, multicast, reserved, unspecified, documentation, benchmarking, the rest of
    the special-purpose registries, and IPv6 forms leading to any of these IPv4 addresses."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return refused_address(embedded)
        if address.is_site_local or any(address in block for block in SPECIAL_IPV6):
            return True
    elif any(address in block for block in SPECIAL_IPV4):
        return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
