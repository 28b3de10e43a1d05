#!/usr/bin/env python3
"""The kernel's floor under `box stop`: SIGKILL the holders of the running boxes named
(read from $XDG_RUNTIME_DIR/box/NAME/state.json) all at once and wait, on pidfds, until
every one is gone. What remains is the kernel's teardown of each box's namespaces and
mounts, which no stop can avoid. Prints the milliseconds it took (timed inside, so the
interpreter's start is not counted)."""
import json
import os
import select
import signal
import sys
import time

runtime = os.environ["XDG_RUNTIME_DIR"]
pidfds = []
for name in sys.argv[1:]:
    with open(f"{runtime}/box/{name}/state.json") as f:
        pidfds.append(os.pidfd_open(json.load(f)["pid"]))
start = time.perf_counter()
for fd in pidfds:
    signal.pidfd_send_signal(fd, signal.SIGKILL)
poller = select.poll()
for fd in pidfds:
    poller.register(fd, select.POLLIN)
left = set(pidfds)
while left:
    for fd, _ in poller.poll(10_000):
        if fd in left:
            left.discard(fd)
            poller.unregister(fd)
print(f"{(time.perf_counter() - start) * 1000:.2f}")
