"""`make soak`: a long steady load with no fault, watching the web's and the worker's
memory. Flat means: the last window's mean RSS is within SOAK_GROWTH of the first window's
(taken after a warm-up), for each process."""

from __future__ import annotations

import time

import numpy as np

from bench.chaos.scenarios import Chaos, Fault, Load
from bench.fixtures import Fleet
from bench.probes import Sampler

SOAK_GROWTH = 0.15
WARM_UP_S = 120.0


def soak_watch(*, seconds: float) -> object:
    """The scenario's "fault": nothing breaks; the processes are sampled while the load runs."""

    def watch(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
        sampler = Sampler(env=chaos.env, stack=chaos.stack, courier_ids=[])
        sampler.start()
        time.sleep(max(0.0, load.started + seconds - time.time()))
        sampler.stop()
        return memory_verdict(samples=sampler.samples, started=load.started, seconds=seconds)

    return watch


def memory_verdict(*, samples: list, started: float, seconds: float) -> Fault:
    fault = Fault()
    warm = min(WARM_UP_S, seconds / 4)
    window = max(60.0, (seconds - warm) / 6)
    end = started + seconds
    for role in ("web", "worker"):
        first = [
            s.rss_mb[role] for s in samples if role in s.rss_mb and started + warm <= s.at < started + warm + window
        ]
        last = [s.rss_mb[role] for s in samples if role in s.rss_mb and s.at >= end - window]
        if not first or not last:
            fault.failures.append(f"no memory samples of the {role}")
            continue
        before, after = float(np.mean(first)), float(np.mean(last))
        fault.notes.append(f"{role} RSS {before:.0f} MB after warm-up, {after:.0f} MB at the end")
        if after > before * (1 + SOAK_GROWTH):
            fault.failures.append(
                f"{role} memory grew {100 * (after / before - 1):.0f} % (more than {SOAK_GROWTH:.0%})"
            )
    queue = [s.queue for s in samples if s.at >= end - window]
    if queue:
        fault.notes.append(f"queue depth in the last window: at most {max(queue)} messages")
    return fault
