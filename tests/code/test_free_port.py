"""``app.testing.services.free_port``: ports outside the kernel's ephemeral range (which outgoing
connections and every bind to port 0 draw from), each one bindable when handed out."""

from __future__ import annotations

import socket
from pathlib import Path

from app.testing.services import free_port


def test_free_ports_lie_below_the_ephemeral_range_and_can_be_bound():
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(20_000 <= p < min(32_000, ephemeral_low) for p in ports), ports
    assert len(ports) > 1  # drawn at random, not one fixed port for every caller
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))
