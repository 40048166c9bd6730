"""mDNS (zeroconf) names and the interface policy shared by the balancer and the nodes.

Nothing is advertised or browsed unless the user turned LAN serving on (or started a LAN
node). LLMLB_MDNS_INTERFACES=127.0.0.1 keeps all multicast on loopback (tests do this)."""

from __future__ import annotations

import os
import socket
from typing import Any

BALANCER_SERVICE = "_llmlb._tcp.local."
NODE_SERVICE = "_llmlb-node._tcp.local."
MDNS_GROUP = "224.0.0.251"  # the address our LAN address is the route towards


def interfaces() -> Any:
    """zeroconf's `interfaces` argument: all, or those in LLMLB_MDNS_INTERFACES."""
    from zeroconf import InterfaceChoice

    chosen = os.environ.get("LLMLB_MDNS_INTERFACES", "").strip()
    if chosen:
        return [i.strip() for i in chosen.split(",") if i.strip()]
    return InterfaceChoice.All


def instance_name(kind: str) -> str:
    """A readable, unique-enough instance name for this machine."""
    return f"{socket.gethostname()}-{kind}-{os.getpid()}"


def service_info(
    service: str, kind: str, address: str, port: int, properties: dict[str, str]
) -> Any:
    """The zeroconf record announcing this process's `service` at address:port."""
    from zeroconf import ServiceInfo

    return ServiceInfo(
        service,
        f"{instance_name(kind)}.{service}",
        addresses=[socket.inet_aton(address)],
        port=port,
        properties=properties,
        server=f"{socket.gethostname()}.local.",
    )


def address_towards(host: str) -> str:
    """The local IP address this machine uses to reach `host` (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
