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

import numpy as np

from bench.corpus import SAMPLE_RATE

CLIP_SECONDS = 10.0


def _python_loop(n: int = 100_000) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


class ReferenceWork:
    """Times the reference work (module docstring) on this thread, one torch thread, by CPU time.

    :meth:`sample` runs ``passes`` passes and keeps their median under a label (one pass takes
    15-27 ms on one core of this project's VM); :meth:`figures` gives the median over all samples
    (``cpu_seconds``, the figure compared), each sample and their spread, (max - min) ÷ median.
    """

    def __init__(self, passes: int = 9) -> None:
        import soundfile as sf

        self.passes = passes
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
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._pass()  # warm: first-call imports and allocations
            value = float(np.median([self._pass() for _ in range(self.passes)]))
        finally:
            torch.set_num_threads(threads)
        self.samples.append((label, value))
        return value

    def figures(self) -> dict:
        from bench.standin_run import spread

        values = [v for _, v in self.samples]
        return {"cpu_seconds": float(np.median(values)) if values else None,
                "samples": [{"at": label, "cpu_seconds": v} for label, v in self.samples],
                "spread": spread(values)}


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
                     f"(median; runs over 10 % run again: {again[0]} and {again[1]}); the pipeline's "
                     f"wall-clock figures move with it")
    return lines
