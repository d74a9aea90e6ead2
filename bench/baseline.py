#!/usr/bin/env python3
"""The Python side of the benchmark: the tutorial's workloads on
multiprocessing.Pool (fork start method), mirroring bin/benches/pool.rs row by row.

Each row prints one JSON line per measurement, as the Rust side does:
{"row": .., "processes": P, "per": N, "samples": [seconds, ..]}, where a sample
is the wall time of `per` operations. bench/run runs both and prints the table.

    python3 bench/baseline.py apply --repeats 5
"""

import argparse
import json
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

try:
    import numpy as np
except ImportError:  # the pi row then uses the standard library's generator
    np = None

FORK = multiprocessing.get_context("fork")
MESSAGE = 16  # bytes per ping-pong message, as in bin/benches/pool.rs


def square(x):
    return x * x


def pi_mc(seed, num_trials=500000):
    """The tutorial's per-sample Monte Carlo estimate of pi."""
    counter = 0
    if np is not None:
        np.random.seed(seed)
        sample = np.random.random_sample
    else:
        import random

        sample = random.Random(seed).random
    for _ in range(num_trials):
        x_val = sample()
        y_val = sample()
        radius = x_val**2 + y_val**2
        if radius < 1:
            counter += 1
    return 4 * counter / num_trials


def bytesum(data):
    """Touches every byte at C speed, as the Rust side's byte sum does."""
    return zlib.adler32(data)


def run_job(line):
    return subprocess.run(["sh", "-c", line]).returncode


def emit(row, processes, per, samples, **extra):
    cpu = [getattr(sample, "cpu", None) for sample in samples]
    if None not in cpu:
        extra["cpu"] = cpu
    print(json.dumps(dict(row=row, processes=processes, per=per, samples=samples, **extra)))
    sys.stdout.flush()


class Sample(float):
    """Wall seconds, with the CPU seconds of this (the parent) process as .cpu."""


def timed(f):
    cpu, start = time.process_time(), time.perf_counter()
    f()
    sample = Sample(time.perf_counter() - start)
    sample.cpu = time.process_time() - cpu
    return sample


def check_sum(n, total):
    want = (n - 1) * n * (2 * n - 1) // 6
    if total != want:
        raise SystemExit(f"baseline: sum of squares below {n} is {total}, not {want}")


def row_start(args):
    samples = []
    for _ in range(args.repeats):
        cpu, start = time.process_time(), time.perf_counter()
        pool = FORK.Pool(args.processes)
        first = pool.apply(square, (3,))
        sample = Sample(time.perf_counter() - start)
        sample.cpu = time.process_time() - cpu
        samples.append(sample)
        assert first == 9
        pool.terminate()
        pool.join()
    emit("start", args.processes, 1, samples)


def row_teardown(args):
    """Ends an idle pool that has run a task, as leaving its `with` block
    does (terminate, then join: its workers stopped and reaped)."""
    samples = []
    for _ in range(args.repeats):
        pool = FORK.Pool(args.processes)
        assert pool.apply(square, (3,)) == 9
        pids = [worker.pid for worker in pool._pool]

        def end():
            pool.terminate()
            pool.join()

        samples.append(timed(end))
        for pid in pids:
            if os.path.exists(f"/proc/{pid}"):
                raise SystemExit(f"baseline: worker {pid} was not reaped")
    emit("teardown", args.processes, 1, samples)


# The whole program the `program` row runs: start a pool, one result, exit.
PROGRAM = """
import multiprocessing, sys
def square(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(int(sys.argv[1])) as pool:
        print(pool.apply(square, (3,)))
"""


def row_program(args):
    """`python3 -c PROGRAM` from exec to exit, output to /dev/null; the CPU is
    the child's and its workers'."""
    samples = []
    for _ in range(args.repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", PROGRAM, str(args.processes)], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        sample = Sample(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sample.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        samples.append(sample)
    emit("program", args.processes, 1, samples)


def echo_child(conn_recv, conn_send):
    """Forks a child that echoes messages until its end is closed."""
    pid = os.fork()
    if pid == 0:
        try:
            while True:
                message = conn_recv()
                if not message:
                    break
                conn_send(message)
        except (EOFError, OSError):
            pass
        os._exit(0)
    return pid


def row_apply(args):
    n = args.size or 2000
    # A raw socket pair, as the Rust side's raw ping-pong.
    ours, theirs = socket.socketpair()
    sock_pid = echo_child(lambda: theirs.recv(MESSAGE, socket.MSG_WAITALL), theirs.sendall)
    theirs.close()
    # multiprocessing's own Pipe (a socket pair under the hood, with framing).
    a, b = FORK.Pipe()
    pipe_pid = echo_child(b.recv_bytes, b.send_bytes)
    b.close()
    message = b"x" * MESSAGE
    raw, pipe, apply = [], [], []
    with FORK.Pool(args.processes) as pool:
        for _ in range(args.repeats):

            def sock_loop():
                for _ in range(n):
                    ours.sendall(message)
                    ours.recv(MESSAGE, socket.MSG_WAITALL)

            def pipe_loop():
                for _ in range(n):
                    a.send_bytes(message)
                    a.recv_bytes()

            def apply_loop():
                for x in range(n):
                    assert pool.apply(square, (x,)) == x * x

            raw.append(timed(sock_loop))
            pipe.append(timed(pipe_loop))
            apply.append(timed(apply_loop))
    # Each echo child holds copies of the other's ends, so end them directly.
    for pid in (sock_pid, pipe_pid):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    emit("pingpong_socket", 2, n, raw)
    emit("pingpong_pipe", 2, n, pipe)
    emit("apply", args.processes, n, apply)


def row_imap1(args):
    n = args.size or 20000
    samples = []
    with FORK.Pool(args.processes) as pool:
        for _ in range(args.repeats):
            total = 0

            def loop():
                nonlocal total
                for y in pool.imap(square, range(n), chunksize=1):
                    total += y

            samples.append(timed(loop))
            check_sum(n, total)
    emit("imap1", args.processes, n, samples)


def row_map(args):
    n = args.size or 1_000_000
    samples = []
    with FORK.Pool(args.processes) as pool:
        for _ in range(args.repeats):
            out = []
            samples.append(timed(lambda: out.append(pool.map(square, range(n)))))
            check_sum(n, sum(out[0]))
    emit("map", args.processes, n, samples)


def row_payload(args):
    n = args.size or 64
    data = bytes(i % 256 for i in range(args.bytes))
    samples = []
    with FORK.Pool(args.processes) as pool:
        for _ in range(args.repeats):
            inputs = [bytes(data) for _ in range(n)]
            out = []
            samples.append(timed(lambda: out.extend(pool.map(bytesum, inputs))))
            assert out == [zlib.adler32(data)] * n
    emit("payload", args.processes, n, samples)


def row_pi(args):
    seeds = list(range(4))
    serial, parallel = [], []
    for _ in range(args.repeats):
        results = []
        serial.append(timed(lambda: results.append(list(map(pi_mc, seeds)))))
        with FORK.Pool(args.processes) as pool:
            parallel.append(timed(lambda: results.append(pool.map(pi_mc, seeds))))
        assert results[0] == results[1], "the same seeds gave different estimates"
    rng = "numpy" if np is not None else "random"
    emit("pi_serial", 1, 1, serial, rng=rng)
    emit("pi_pool", args.processes, 1, parallel, rng=rng)


def row_jobs(args):
    n = args.size or 1000
    lines = ["true"] * n
    with tempfile.NamedTemporaryFile("w", suffix=".jobs") as jobfile:
        jobfile.write("\n".join(lines) + "\n")
        jobfile.flush()
        pool_samples, xargs_samples = [], []
        for _ in range(args.repeats):
            with FORK.Pool(args.processes) as pool:
                codes = []
                pool_samples.append(timed(lambda: codes.extend(pool.map(run_job, lines, chunksize=1))))
                assert codes == [0] * n
            with open(jobfile.name) as stdin:
                xargs = ["xargs", "-P", str(args.processes), "-d", "\n", "-n", "1", "sh", "-c"]
                xargs_samples.append(timed(lambda: subprocess.run(xargs, stdin=stdin, check=True)))
    emit("jobs_pool", args.processes, n, pool_samples)
    emit("jobs_xargs", args.processes, n, xargs_samples)


ROWS = {
    "start": row_start,
    "teardown": row_teardown,
    "apply": row_apply,
    "imap1": row_imap1,
    "map": row_map,
    "payload": row_payload,
    "pi": row_pi,
    "jobs": row_jobs,
    "program": row_program,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--size", type=int, help="inputs (or round trips, or jobs) per sample")
    parser.add_argument("--bytes", type=int, default=1 << 20, help="bytes per buffer (payload row)")
    args = parser.parse_args()
    args.repeats = max(1, args.repeats)
    ROWS[args.row](args)


if __name__ == "__main__":
    main()
