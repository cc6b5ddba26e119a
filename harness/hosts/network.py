"""The hosts' network: one bridge, and one veth and network namespace per host.

```
 harness namespace                      host namespace tgh-<name>
 tgh-br (bridge, .1 = gateway) -- tgh-v<n> ==veth== eth0 (.n+1), lo
```

Addresses come from a configured subnet (`TENGINE_HARNESS_SUBNET`, default 10.213.0.0/24). A
host gets no default route: it can reach the bridge's subnet and nothing else, so no packet of a
test leaves the machine. Every name starts with `PREFIX`, so leftovers of a crashed run can be
found and removed (`python -m harness.hosts cleanup`).
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass

from .base import HostError
from .system import tool

PREFIX = "tgh-"
BRIDGE = f"{PREFIX}br"
SUBNET_ENV = "TENGINE_HARNESS_SUBNET"
DEFAULT_SUBNET = "10.213.0.0/24"
HOST_IFNAME = "eth0"


def subnet_from_env(value: str | None = None) -> ipaddress.IPv4Network:
    """The configured subnet (`value`, else $TENGINE_HARNESS_SUBNET, else the default)."""
    raw = value or os.environ.get(SUBNET_ENV) or DEFAULT_SUBNET
    source = "subnet" if value else (SUBNET_ENV if os.environ.get(SUBNET_ENV) else "default")
    try:
        subnet = ipaddress.ip_network(raw.strip(), strict=True)
    except ValueError as exc:
        raise HostError(f"{source} {raw!r} is not a network like 10.213.0.0/24: {exc}") from exc
    if not isinstance(subnet, ipaddress.IPv4Network):
        raise HostError(f"{source} {raw!r}: only IPv4 subnets are supported")
    if subnet.prefixlen > 29:
        raise HostError(f"{source} {raw!r} is too small: use /29 or larger (a gateway and hosts)")
    if not subnet.is_private or subnet.is_loopback or subnet.is_link_local:
        raise HostError(f"{source} {raw!r} must be a private range (like 10.x, 172.16-31.x, "
                        "192.168.x, 198.18.x) so test traffic can never mean a real server")
    return subnet


def netns_name(host_name: str) -> str:
    return f"{PREFIX}{host_name}"


def veth_name(index: int) -> str:
    return f"{PREFIX}v{index}"  # interface names are limited to 15 characters: keep it short


def _routes() -> list[dict]:
    return json.loads(tool(["ip", "-j", "-4", "route", "show", "table", "all"], what="routes")
                      or "[]")


class Bridge:
    """The bridge that all hosts hang on, with the gateway address in the harness's namespace."""

    def __init__(self, subnet: ipaddress.IPv4Network):
        self.subnet = subnet
        hosts = subnet.hosts()
        self.gateway = next(hosts)
        self._free = hosts  # addresses are handed out once, never reused: no stale ARP entries
        self.created = False

    def create(self) -> None:
        if link_exists(BRIDGE):
            raise HostError(f"bridge {BRIDGE} already exists: something outside the hosts "
                            "lock made it (remove leftovers with `python -m harness.hosts "
                            "cleanup`)")
        self._refuse_overlapping_routes()
        self.created = True  # from here on, destroy() has something to remove
        tool(["ip", "link", "add", BRIDGE, "type", "bridge"], what="create bridge")
        tool(["ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", BRIDGE],
             what="address the bridge")
        tool(["ip", "link", "set", BRIDGE, "up"], what="bring the bridge up")
        self._check_route_is_local()

    def next_address(self) -> ipaddress.IPv4Address:
        try:
            return next(self._free)
        except StopIteration:
            raise HostError(f"subnet {self.subnet} has no free address left for another host; "
                            f"configure a larger one with {SUBNET_ENV}") from None

    def destroy(self) -> None:
        if self.created:
            delete_link(BRIDGE)
        self.created = False

    def _refuse_overlapping_routes(self) -> None:
        for route in _routes():
            dst = route.get("dst", "")
            if dst in ("default", "") or route.get("type") in ("local", "broadcast"):
                continue
            try:
                net = ipaddress.ip_network(dst, strict=False)
            except ValueError:
                continue
            if net.overlaps(self.subnet):
                raise HostError(f"subnet {self.subnet} overlaps the route {dst} via "
                                f"{route.get('dev', '?')} on this machine; choose another with "
                                f"{SUBNET_ENV}")

    def _check_route_is_local(self) -> None:
        # A packet for a host address must go to the bridge and nowhere else.
        probe = str(self.gateway + 1)
        route = json.loads(tool(["ip", "-j", "route", "get", probe], what="check route"))
        dev = route[0].get("dev") if route else None
        if dev != BRIDGE:
            raise HostError(f"packets for {probe} would leave through {dev}, not {BRIDGE}")


@dataclass
class HostLink:
    """A host's network namespace and its cable (the veth pair) into the bridge."""

    netns: str
    veth: str
    address: str
    prefixlen: int

    def create(self) -> None:
        if os.path.exists(f"/run/netns/{self.netns}"):
            raise HostError(f"network namespace {self.netns} already exists: remove leftovers "
                            "with `python -m harness.hosts cleanup`")
        tool(["ip", "netns", "add", self.netns], what=f"create netns {self.netns}")
        tool(["ip", "-n", self.netns, "link", "set", "lo", "up"], what="loopback up")
        tool(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", HOST_IFNAME,
              "netns", self.netns], what=f"create veth {self.veth}")
        tool(["ip", "link", "set", self.veth, "master", BRIDGE], what="attach veth to bridge")
        tool(["ip", "-n", self.netns, "addr", "add", f"{self.address}/{self.prefixlen}",
              "dev", HOST_IFNAME], what=f"address {self.netns}")
        tool(["ip", "-n", self.netns, "link", "set", HOST_IFNAME, "up"], what="host link up")
        # The cable (the bridge end) stays unplugged until the host has booted.

    def set_cable(self, plugged: bool) -> None:
        """Plug or pull the cable: the bridge end of the veth up or down. The host sees its
        link go (no carrier), as a server that is powered off takes its link down."""
        tool(["ip", "link", "set", self.veth, "up" if plugged else "down"],
             what=f"{'plug' if plugged else 'pull'} cable {self.veth}")

    def set_port(self, forwarding: bool) -> None:
        """Open or close the host's bridge port. Closed, the bridge drops every frame to and
        from it while both ends keep their link: a silent cut somewhere on the path, which
        heals at once (a link brought back up can take the kernel up to a second)."""
        tool(["bridge", "link", "set", "dev", self.veth, "state",
              "3" if forwarding else "0"],  # 3 = forwarding, 0 = disabled
             what=f"{'open' if forwarding else 'close'} bridge port {self.veth}")

    def destroy(self) -> None:
        delete_link(self.veth)
        if os.path.exists(f"/run/netns/{self.netns}"):
            tool(["ip", "netns", "del", self.netns], what=f"remove netns {self.netns}")


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def delete_link(name: str) -> bool:
    """Delete a link if it exists; False if it was gone already (a veth vanishes by itself
    when the kernel finishes tearing down the network namespace of its peer)."""
    try:
        tool(["ip", "link", "del", name], what=f"remove link {name}")
    except HostError:
        if link_exists(name):
            raise
        return False
    return True


def leftover_links() -> list[str]:
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(PREFIX))


def leftover_netns() -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(PREFIX))
