#!/usr/bin/env python3
"""Writes a large lab for load tests: N hosts spread over M networks, all
joined by one router r1.

    python3 examples/generate-big.py 1000 10 > /tmp/big.yaml
    labctl apply -f /tmp/big.yaml
"""
import sys

hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
nets = int(sys.argv[2]) if len(sys.argv) > 2 else 10
per = -(-hosts // nets)
out = ["name: big", "networks:"]
for n in range(nets):
    out += [f"  - name: net{n}", f"    ipv4: 10.{n}.0.0/16", f"    ipv6: fd00:0:0:{n:x}::/64"]
out += ["hosts:", "  - name: r1", "    forwarding: true", "    interfaces:"]
for n in range(nets):
    out += [f"      - network: net{n}", f"        ipv4: 10.{n}.0.1/16"]
for i in range(hosts):
    n = i // per
    out += [f"  - name: h{i}", f"    interfaces: [net{n}]", f"    gateway: 10.{n}.0.1"]
print("\n".join(out))
