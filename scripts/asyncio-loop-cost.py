#!/usr/bin/env python3
"""Where the trace-saturation cost model's figures come from (incident 000).

Measures, on real CPython asyncio, what an event loop pays for the tasks
the pre-fix trace writer piles up (each waits on one asyncio.Lock held
across a ~1 s acknowledged insert in asyncio.to_thread):

  1. a task step: create_task + first step, and one lock hand-off;
  2. a loop iteration with N tasks waiting on a lock, and with N timers
     pending (gc disabled): does a waiter or a timer cost anything per
     iteration?
  3. a full (generation-2) collection with N tasks waiting on the lock,
     each holding a trace shaped like letta's LLMTrace (28 fields, JSON
     payloads as strings) or a trace holding a parsed 20-message request:
     cost per waiting task and per tracked object;
  4. (--with-replay RATE SECONDS) the incident itself: an open loop of RATE
     traces/s, the pre-fix writer, a 250 ms heartbeat; every gen-2 pass
     logged with its pause and the tasks alive.

Usage:  python3 scripts/asyncio-loop-cost.py [--with-replay 500 150]
Each measurement runs in a fresh interpreter. Timings vary with the
machine's load: run it on a quiet machine, and read per-object figures
rather than absolute pauses.
Output: scripts/asyncio-loop-cost.txt holds a run of this machine.
"""

import asyncio
import gc
import os
import sys
import time


class LLMTrace:
    """The shape of letta's LLMTrace: 28 fields, request/response as str."""

    def __init__(self, i):
        for k in range(24):
            setattr(self, f"f{k}", f"v{i}-{k}")
        self.agent_tags = ["a", "b"]
        self.request_json = "x" * 4000
        self.response_json = "y" * 2000
        self.fields_set = {"f0", "f1"}


def parsed_trace(i, messages=20):
    """A trace that holds its request parsed (dicts), 20 messages."""
    return {
        "id": i,
        "messages": [
            {"role": "user", "content": "x" * 50, "meta": {"k": j}}
            for j in range(messages)
        ],
    }


def best_of(n, f):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


async def pile(n, make):
    """n tasks waiting on one held lock, each holding make(i)."""
    lock = asyncio.Lock()
    await lock.acquire()

    async def write(trace):
        async with lock:
            await asyncio.sleep(0)

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(write(make(i))) for i in range(n)]
    await asyncio.sleep(0)
    spawn_s = time.perf_counter() - t0
    return lock, tasks, spawn_s


async def drain(lock, tasks):
    # Release, never cancel: cancelling n lock waiters is O(n^2)
    # (each removes itself from the waiters deque).
    t0 = time.perf_counter()
    lock.release()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0


async def iteration_lag():
    """Median lateness of a 5 ms sleep (one loop iteration's overhead)."""
    lags = []
    for _ in range(40):
        due = time.perf_counter() + 0.005
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - due)
    return sorted(lags)[len(lags) // 2]


async def steps_and_iterations():
    gc.disable()
    print("## 1-2. task steps and loop iterations (gc disabled)")
    for n in (1_000, 100_000):
        lock, tasks, spawn_s = await pile(n, lambda i: None)
        lag = await iteration_lag()
        handoff_s = await drain(lock, tasks)
        print(
            f"{n:>7} lock waiters: create_task + first step {spawn_s / n * 1e6:5.1f} us/task, "
            f"hand-off {handoff_s / n * 1e6:5.1f} us/task, iteration lag (median) {lag * 1e3:.3f} ms"
        )
    for n in (0, 100_000):
        sleepers = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(n)]
        await asyncio.sleep(0)
        lag = await iteration_lag()
        print(f"{n:>7} pending timers: iteration lag (median) {lag * 1e3:.3f} ms")
        for s in sleepers:
            s.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
    gc.enable()


async def full_pass(shape, make, n):
    gc.collect()
    base = best_of(3, gc.collect)
    lock, tasks, _ = await pile(n, make)
    objects = len(gc.get_objects())
    p = best_of(3, gc.collect)
    await drain(lock, tasks)
    per_task_us = (p - base) / n * 1e6
    per_object_ns = (p - base) / max(objects, 1) * 1e9
    print(
        f"{shape:<26} {n:>7} waiting tasks: full pass {p * 1e3:7.1f} ms "
        f"(empty heap {base * 1e3:.1f} ms): {per_task_us:5.1f} us per waiting task, "
        f"{objects / n:5.1f} tracked objects per task, {per_object_ns:4.0f} ns per object"
    )


async def replay(rate, seconds):
    """The pre-fix writer under an open loop; gen-2 passes and lag."""
    print(f"## 4. incident replay: {rate} traces/s for {seconds} s, pre-fix writer")
    lock = asyncio.Lock()
    background = set()
    passes = []
    started = {}

    def on_gc(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
        elif info["generation"] == 2:
            now = time.perf_counter()
            passes.append((now, now - started["t"], len(background)))

    def insert(_row):
        time.sleep(1.0)  # wait_for_async_insert=1: the server's ~1 s flush

    async def write_with_retry(trace):
        async with lock:
            await asyncio.to_thread(insert, trace)

    beats = []

    async def heartbeat():
        while True:
            due = time.perf_counter() + 0.25
            await asyncio.sleep(0.25)
            beats.append((time.perf_counter(), time.perf_counter() - due))

    gc.callbacks.append(on_gc)
    hb = asyncio.create_task(heartbeat())
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(write_with_retry(parsed_trace(i)))
        background.add(task)
        task.add_done_callback(background.discard)
        i += 1
    hb.cancel()
    gc.callbacks.remove(on_gc)
    for at, pause, alive in passes:
        print(
            f"  gen-2 pass at t = {at - t0:6.1f} s: pause {pause * 1e3:7.1f} ms, "
            f"{alive:>6} tasks alive ({pause / max(alive, 1) * 1e6:.1f} us/task)"
        )
    worst = max(beats, key=lambda b: b[1])
    print(f"  worst heartbeat lag {worst[1] * 1e3:.0f} ms at t = {worst[0] - t0:.1f} s")
    print(f"  tasks alive at the end: {len(background)} (the writer serves 1 trace/s)")
    # The pile still waits on the lock: leave without asyncio.run's
    # cancellation of every task (quadratic in lock waiters).
    sys.stdout.flush()
    os._exit(0)


def in_child(*args):
    """Runs one measurement in a fresh interpreter (no garbage of another)."""
    import subprocess

    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, *args], check=True)


def main():
    if sys.argv[1:2] == ["--steps"]:
        asyncio.run(steps_and_iterations())
    elif sys.argv[1:2] == ["--pass"]:
        shape, n = sys.argv[2], int(sys.argv[3])
        make = LLMTrace if shape == "llmtrace" else parsed_trace
        label = "LLMTrace (JSON as str)" if shape == "llmtrace" else "parsed 20-message request"
        asyncio.run(full_pass(label, make, n))
    elif sys.argv[1:2] == ["--replay"]:
        asyncio.run(replay(float(sys.argv[2]), float(sys.argv[3])))
    else:
        print(f"# CPython {sys.version.split()[0]} asyncio, {time.strftime('%Y-%m-%d')}")
        in_child("--steps")
        print("## 3. a full collection with tasks waiting on the lock")
        for shape, n in [("llmtrace", 20_000), ("llmtrace", 100_000), ("parsed", 20_000), ("parsed", 60_000)]:
            in_child("--pass", shape, str(n))
        if "--with-replay" in sys.argv:
            k = sys.argv.index("--with-replay")
            in_child("--replay", sys.argv[k + 1], sys.argv[k + 2])


if __name__ == "__main__":
    main()
