"""How fast the machine itself is while a benchmark runs: one fixed piece of work, timed again and
again through the run.

Every figure of ``jobs.benchmark`` is CPU or wall time of this machine's cores. On a shared VM the
same single-threaded work can take twice the CPU time from one minute to the next (a neighbour on
the physical core's other hyperthread, the host's frequency), with no steal counted. The reference
work is the pipeline's own hot path on one thread, so that it slows as the benchmark's figures do:
the FLAC decode of a fixed 10 s clip, its log-mel features, and a plain Python loop (the per-batch
Python of Ray and the actor). ``--compare`` prints the two runs' reference times beside their
figures: two runs cannot agree better than the machine under them did.
"""

from __future__ import annotations

import io
import time
from contextlib import contextmanager

import numpy as np

from bench.corpus import SAMPLE_RATE

CLIP_SECONDS = 10.0
OTHERS_WINDOW_S = 0.5     # seconds the benchmark waits, at each sample, to see what else uses the machine
OTHERS_LIMIT_CORES = 0.25  # other processes' CPU above which a sample says the run shares the machine


@contextmanager
def one_torch_thread():
    """Torch on one thread inside the block, its thread count as it was after: the single-thread
    CPU-time measurements (reference work, decode costs, features pairs)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def other_processes_cores(window_s: float = OTHERS_WINDOW_S) -> float:
    """Cores the machine's other processes used over ``window_s`` seconds while this process
    waits: the machine's busy CPU time (``psutil.cpu_times``, as :class:`bench.standin_run.MachineCpu`
    counts it) less this process's and its descendants' (a local Ray's raylet, GCS and workers),
    ÷ ``window_s``. What neither the reference work (one thread's CPU time) nor the VM's steal (the
    host's other guests) sees: a test suite or a build on this machine's own cores."""
    import psutil

    from bench.standin_run import MachineCpu

    me = psutil.Process()

    def own() -> dict[int, float]:
        cpu = {}
        for proc in [me, *me.children(recursive=True)]:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            cpu[proc.pid] = t.user + t.system
        return cpu

    def machine() -> float:
        t = psutil.cpu_times()
        return sum(getattr(t, k, 0.0) for k in MachineCpu.BUSY)

    own_before, machine_before = own(), machine()
    time.sleep(window_s)
    machine_after, own_after = machine(), own()
    ours = sum(v - own_before.get(pid, 0.0) for pid, v in own_after.items())
    return max(0.0, (machine_after - machine_before - ours) / window_s)


def _python_loop(n: int = 100_000) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


class ReferenceWork:
    """Times the reference work (module docstring) on this thread, one torch thread, by CPU time.

    :meth:`sample` first waits ``OTHERS_WINDOW_S`` to see how many cores other processes use
    (:func:`other_processes_cores`; over ``OTHERS_LIMIT_CORES`` it says so through ``echo``), then runs
    ``passes`` passes and keeps their median under a label (one pass takes 15-27 ms on one core of
    this project's VM); :meth:`figures` gives the median over all samples (``cpu_seconds``, the
    figure compared), each sample and their spread, (max - min) ÷ median, and the other
    processes' cores (median and most).
    """

    def __init__(self, passes: int = 9, echo=None) -> None:
        import soundfile as sf

        self.passes = passes
        self.echo = echo
        self.others: list[float] = []
        rng = np.random.default_rng(1234)
        t = np.arange(int(CLIP_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
        wave = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        self._flac = buf.getvalue()
        self.samples: list[tuple[str, float]] = []

    def _pass(self) -> float:
        from model import log_mel
        from pipeline.stages.decode import decode

        start = time.thread_time()
        wave = decode(self._flac)
        log_mel(np.asarray(wave, dtype=np.float32))
        _python_loop()
        return time.thread_time() - start

    def sample(self, label: str) -> float:
        """One sample (the median of ``passes`` passes, CPU seconds), kept under ``label``."""
        others = other_processes_cores()
        self.others.append(others)
        if others > OTHERS_LIMIT_CORES and self.echo is not None:
            self.echo(f"  machine: other processes are using {others:.2f} cores of this machine ({label}): "
                      f"the figures are measured beside them")
        with one_torch_thread():
            self._pass()  # warm: first-call imports and allocations
            value = float(np.median([self._pass() for _ in range(self.passes)]))
        self.samples.append((label, value))
        return value

    def figures(self) -> dict:
        from bench.standin_run import spread

        values = [v for _, v in self.samples]
        return {"cpu_seconds": float(np.median(values)) if values else None,
                "samples": [{"at": label, "cpu_seconds": v, "other_processes_cores": o}
                            for (label, v), o in zip(self.samples, self.others)],
                "spread": spread(values),
                "other_processes_cores": float(np.median(self.others)) if self.others else None,
                "other_processes_cores_max": max(self.others) if self.others else None}


def compare_reference(a: dict, b: dict, tolerance: float = 0.10) -> list[str]:
    """Lines for ``--compare``: the machine's reference time in each run (``machine_reference`` of
    two benchmark JSONs), its relative difference and its spread inside each run; none when either
    run has no reference (JSONs written before it existed)."""
    ra, rb = a.get("machine_reference") or {}, b.get("machine_reference") or {}
    x, y = ra.get("cpu_seconds"), rb.get("cpu_seconds")
    if not x or not y:
        return []
    diff = abs(x - y) / ((x + y) / 2)
    inside = ", ".join("-" if r.get("spread") is None else f"{r['spread']:.0%}" for r in (ra, rb))
    verdict = ("the machine held its speed between the runs" if diff <= tolerance else
               "the machine itself changed speed between the runs: CPU- and wall-time figures move with it")
    lines = [f"machine: the same reference work took {x * 1000:.1f} and {y * 1000:.1f} CPU ms "
             f"({diff:.1%} apart; {inside} inside each run): {verdict}"]
    sa, sb = a.get("steal_share_in_pipeline_runs"), b.get("steal_share_in_pipeline_runs")
    if sa is not None and sb is not None:
        again = [len(r.get("standin_runs_discarded") or []) for r in (a, b)]
        lines.append(f"machine: the VM's host stole {sa:.1%} and {sb:.1%} of its time in the pipeline runs "
                     f"(median; runs over 10 %, 5 % at R = inf, run again: {again[0]} and {again[1]}); the pipeline's "
                     f"wall-clock figures move with it")
    oa, ob = ra.get("other_processes_cores_max"), rb.get("other_processes_cores_max")
    if oa is not None and ob is not None:
        shared = max(oa, ob) > OTHERS_LIMIT_CORES
        lines.append(f"machine: other processes used at most {oa:.2f} and {ob:.2f} cores while each run paused"
                     + (": a run shared this machine's cores, its figures measured beside that work" if shared
                        else ": neither run shared this machine's cores"))
    return lines
