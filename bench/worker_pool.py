"""Ray's idle-worker limit and the pipeline's CPU, side by side on this machine.

The stand-in pipeline (``jobs.benchmark``'s, ``bench/standin_run.py``: the inference actor without
the forward) on the benchmark's corpus, under Ray's default ``num_workers_soft_limit`` (one idle
worker per CPU) and under the one the jobs give the Ray instance they start themselves
(``pipeline.cluster.worker_pool_config``). The two settings take turns (``--rounds``), each on a
fresh local Ray instance with one pipeline run left out first (as in the benchmark), then
``--runs`` counted runs. Per run: the steady-state RTFx, the whole machine's CPU seconds per audio
second in that window, and how many Ray worker processes started during the run (sampled every
0.1 s under this process's raylet). Medians per setting.

    python -m bench.worker_pool                        # 2 rounds x 2 runs per setting, 20x corpus
    python -m bench.worker_pool --rtfx 4000 --json pool.json
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.standin_run import PeriodicSampler
from pipeline.cluster import SOFT_LIMIT_ENV

SETTINGS = ("ray default", "jobs' own")


class WorkerStarts(PeriodicSampler):
    """Ray worker processes that appear while in its ``with`` block (pids sampled every ``every``
    seconds, against those alive at its start): ``started``, a set of pids."""

    def __init__(self, every: float = 0.1):
        super().__init__(every)
        self.started: set[int] = set()
        self._before: set[int] | None = None

    def _sample(self) -> None:
        from bench.row_groups import ray_workers

        pids = {p.pid for p in ray_workers()}
        if self._before is None:
            self._before = pids
        else:
            self.started |= pids - self._before


def _round(setting: str, tmp: Path, checkpoint: Path, cfg, audio: float, runs: int, rtfx: str,
           cpus: int, echo) -> list[dict]:
    import ray

    from bench.pipeline_run import _run_pipeline, quiet_ray_data, start_local_ray
    from bench.standin_run import _standin_run

    start_local_ray(cpus, jobs_worker_pool=setting == "jobs' own")
    out = []
    try:
        with quiet_ray_data():
            _run_pipeline(tmp / "corpus", tmp / f"warm-{time.monotonic_ns()}", checkpoint, cfg, 1,
                          simulate_rtfx=float(rtfx))
            for i in range(runs):
                with WorkerStarts() as starts:
                    run = _standin_run(tmp, tmp / f"out-{time.monotonic_ns()}", checkpoint, cfg, audio, rtfx)
                run["worker_starts"] = len(starts.started)
                echo(f"  {setting:11s} run {i + 1}: steady {run['steady_rtfx']:.0f} RTFx, machine "
                     f"{1000 * run['machine_cpu_seconds_per_audio_second']:.2f} cores per 1000x, "
                     f"{run['worker_starts']} worker starts, host stole {run['steal_share']:.1%}")
                out.append(run)
    finally:
        ray.shutdown()
    return out


def _rtfx(text: str) -> str:
    from jobs._common import finite_number

    return f"{finite_number(0, allow_inf=True)(text):g}"


def main(argv=None) -> int:
    import psutil

    from jobs._common import OneLineParser, whole_number

    _positive_int = whole_number(1)
    parser = OneLineParser(prog="python -m bench.worker_pool", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=_positive_int, default=2, help="turns of each setting (default: 2)")
    parser.add_argument("--runs", type=_positive_int, default=2, help="counted runs per turn (default: 2)")
    parser.add_argument("--scale-factor", type=_positive_int, default=20,
                        help="copies of the 48-clip corpus (default: 20)")
    parser.add_argument("--rtfx", type=_rtfx, default="inf", help="the stand-in's R (default: inf)")
    parser.add_argument("--cpus", type=_positive_int, default=psutil.cpu_count() or 1,
                        help="Ray's CPUs (default: this machine's, %(default)s)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    from jobs.benchmark import unwritable

    if args.json is not None and (problem := unwritable(args.json)):
        parser.error(f"cannot write --json {args.json}: {problem}")
    # Ray's default must be Ray's: a limit the user exported for `ray start` would reach the raylet
    os.environ.pop(SOFT_LIMIT_ENV, None)

    from bench.core import BenchmarkConfig
    from bench.corpus import corpus_durations, corpus_waveforms, size_config, write_checkpoint
    from bench.pipeline_run import write_corpus
    from model import random_model

    cfg = BenchmarkConfig(size="tiny", count=48, scale_factor=args.scale_factor, device="cpu")
    model = random_model(size_config("tiny"), seed=0, device="cpu", dtype="float32")
    waves = corpus_waveforms(corpus_durations(cfg.count, cfg.seed), cfg.seed)
    runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="nle-pool-") as tmp:
        tmp = Path(tmp)
        checkpoint = write_checkpoint(model, tmp / "checkpoint")
        write_corpus(waves, tmp / "corpus", copies=cfg.scale_factor)
        audio = cfg.scale_factor * sum(w.size for w in waves) / 16000
        for r in range(args.rounds):
            for setting in SETTINGS:
                print(f"round {r + 1} of {args.rounds}, {setting} (R = {args.rtfx}) ...", flush=True)
                runs[setting] += _round(setting, tmp, checkpoint, cfg, audio, args.runs, args.rtfx,
                                        args.cpus, lambda line: print(line, flush=True))
    summary = {}
    for setting, got in runs.items():
        summary[setting] = {
            "steady_rtfx": float(np.median([r["steady_rtfx"] for r in got])),
            "cores_per_1000x": 1000 * float(np.median([r["machine_cpu_seconds_per_audio_second"] for r in got])),
            "worker_starts_per_run": float(np.median([r["worker_starts"] for r in got])),
            "steal_share": float(np.median([r["steal_share"] for r in got])),
        }
        s = summary[setting]
        print(f"{setting:11s}: steady {s['steady_rtfx']:.0f} RTFx, {s['cores_per_1000x']:.2f} cores per 1000x, "
              f"{s['worker_starts_per_run']:g} worker starts per run (medians of {len(got)} runs; "
              f"host stole {s['steal_share']:.1%})")
    a, b = summary["ray default"], summary["jobs' own"]
    print(f"jobs' own ÷ ray default: steady RTFx {b['steady_rtfx'] / a['steady_rtfx']:.2f}, "
          f"cores per 1000x {b['cores_per_1000x'] / a['cores_per_1000x']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs, "rtfx": args.rtfx,
                                               "scale_factor": args.scale_factor, "cpus": args.cpus}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
