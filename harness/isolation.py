"""Crash isolation: cases run in a child process, so a kernel that segfaults, aborts or hangs
costs one `crash` row (with its repro), not the run.

The child is started with `spawn` (never `fork`: the parent may hold OpenMP threads) and serves
cases over a pipe until it dies; the next case starts a fresh one. In the child, every CPU
allocation is junk-filled (c10's own allocator flag), so an output element a kernel never writes
shows up as NaN or garbage instead of a lucky zero.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback

CASE_TIMEOUT_S = 300.0   # a hang is a crash; the slowest legitimate case takes a few seconds


def junk_fill_allocations(on: bool = True) -> None:
    import torch
    lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libc10.so"))
    ctypes.c_bool.in_dll(lib, "FLAGS_caffe2_cpu_allocator_do_junk_fill").value = on


def execute(request: tuple, backends_cache: dict) -> dict:
    """Run one request in this process: (kind, op, backend, variant, payload, threads) with kind
    "case" or "schema" (payload: a case description), "error" (payload: an error input's index) or
    "fuzz" (payload: a call of harness/fuzz.py); threads, when not None, sets torch's intra-op
    thread count first."""
    import torch

    from harness import backends, runner
    from harness.registry import REGISTRY
    kind, op, backend_name, variant, payload, threads = request
    if threads:
        torch.set_num_threads(threads)
    backend = backends_cache.get(backend_name) or backends_cache.setdefault(
        backend_name, backends.make(backend_name))
    if kind == "case":
        row = runner.run_case(op, backend, variant, payload)
    elif kind == "schema":
        row = runner.run_schema(op, backend, variant, payload)
    elif kind == "fuzz":
        from harness import fuzz
        row = fuzz.run_call(op, backend, variant, payload)
    else:
        row = runner.run_error_input(op, backend, variant, REGISTRY[op].errors[payload])
    row["backend_info"] = backend.describe()
    return row


def _serve(conn) -> None:
    junk_fill_allocations()
    cache: dict = {}
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            row = execute(request, cache)
        except Exception:   # a harness defect: report it on the row rather than die
            row = {"status": "error", "reason": "harness: " + traceback.format_exc(limit=3)[-500:]}
        conn.send(row)


class Isolated:
    def __init__(self, timeout: float = CASE_TIMEOUT_S):
        self.timeout = timeout
        self.proc = None
        self.conn = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="harness-worker")
        self.proc.start()
        child.close()

    def close(self) -> None:
        if self.proc is not None:
            self.conn.close()
            self.proc.join(timeout=5)
            if self.proc.is_alive():
                self.proc.kill()
            self.proc = None

    def run(self, request: tuple) -> dict:
        """The row of one request; a `crash` row if the child dies or hangs on it."""
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send(request)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if self.conn.poll(0.05):
                    return self.conn.recv()
            except (EOFError, ConnectionResetError):
                break
            if not self.proc.is_alive():
                if self.conn.poll(0):   # it answered, then exited
                    try:
                        return self.conn.recv()
                    except EOFError:
                        pass
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                break
        self.proc.join(timeout=5)
        code = self.proc.exitcode
        self.proc = None
        if code is None or code == -signal.SIGKILL and time.monotonic() > deadline:
            how = f"no answer within {self.timeout:g} s (killed)"
        elif code < 0:
            how = f"the process died of {signal.Signals(-code).name}"
        else:
            how = f"the process exited with status {code}"
        return {"status": "crash", "reason": how}
