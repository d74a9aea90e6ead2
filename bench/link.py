#!/usr/bin/env python3
"""A network link with a delay, for a kernel without tc netem: two TUN
devices, each moved into its own network namespace by the caller, and this
process between them copying every packet from one to the other after the
delay (one way: the delay is added to each round trip once).

    bench/link.py A B READY_FILE DELAY_FILE

creates TUN devices A and B here, writes READY_FILE once they exist, then
relays until killed. Packets from A reach B DELAY_FILE's milliseconds late
(read again on SIGUSR1; 0 or no file, no delay); packets from B reach A at
once."""

import fcntl
import heapq
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def send(to, packet):
    try:
        os.write(to, packet)
    except OSError:
        pass  # the device is down or its queue full: dropped, as a link would


def main():
    a_name, b_name, ready, delay_file = sys.argv[1:]
    a, b = tun(a_name), tun(b_name)
    delay = [0.0]

    def reread(*_):
        try:
            with open(delay_file) as f:
                delay[0] = float(f.read().strip() or 0) / 1e3
        except FileNotFoundError:
            delay[0] = 0.0

    reread()
    signal.signal(signal.SIGUSR1, reread)
    with open(ready, "w") as f:
        f.write("ready\n")
    # Packets due: (when, sequence, to, bytes); the sequence keeps their order.
    due = []
    sequence = 0
    while True:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, to, packet = heapq.heappop(due)
            send(to, packet)
        timeout = max(0.0, due[0][0] - now) if due else None
        try:
            readable, _, _ = select.select([a, b], [], [], timeout)
        except InterruptedError:
            continue
        for fd in readable:
            to, wait = (b, delay[0]) if fd == a else (a, 0.0)
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if wait == 0.0 and not due:
                    send(to, packet)
                else:
                    sequence += 1
                    heapq.heappush(due, (time.monotonic() + wait, sequence, to, packet))


if __name__ == "__main__":
    main()
