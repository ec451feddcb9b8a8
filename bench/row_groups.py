"""Bytes read and memory of the fetch stage for a Parquet shard with one big row group.

A Hugging Face shard written with one row group (``row_group_size`` left at pyarrow's default
of a million rows) holds all its audio in one column chunk, which pyarrow reads whole. This
runs the jobs' index and fetch stages (``pipeline.run.items_dataset``: no decoding, no model) on
such a shard and reports the bytes the Ray worker processes read (``rchar`` of
``/proc/<pid>/io``: file reads, plus a little socket traffic) and their peak resident memory
(sampled every 50 ms), summed over the workers. The 3,000-row, 419 MB shard of the issue is
scaled down by ``--rows``/``--row-bytes``.

    python -m bench.row_groups                          # 3,000 rows of 33 kB, one row group
    python -m bench.row_groups --rows-per-group 100     # the same rows in 100-row groups
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import threading
import time


def write_shard(path: pathlib.Path, rows: int, row_bytes: int, rows_per_group: int) -> int:
    """A shard of ``rows`` incompressible audio cells of ``row_bytes`` each; returns its size."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    cells = [{"bytes": rng.bytes(row_bytes), "path": f"{i:05d}.flac"} for i in range(rows)]
    table = pa.table({"audio": pa.array(cells, pa.struct([("bytes", pa.binary()),
                                                          ("path", pa.string())])),
                      "text": pa.array([f"row {i}" for i in range(rows)])})
    pq.write_table(table, path, row_group_size=rows_per_group, compression="none")
    return path.stat().st_size


def ray_workers() -> list:
    """The Ray worker processes (``psutil.Process``) of the instance this process started: those
    under its raylet, whose command line is a Ray worker's."""
    import psutil

    def is_worker(p) -> bool:
        try:
            return any(c.startswith("ray::") or "default_worker.py" in c for c in p.cmdline())
        except Exception:  # noqa: BLE001 - a process that ended
            return False

    return [p for p in psutil.Process(os.getpid()).children(recursive=True) if is_worker(p)]


def _rchar(processes) -> dict[int, int]:
    got = {}
    for p in processes:
        try:
            got[p.pid] = p.io_counters().read_chars
        except Exception:  # noqa: BLE001 - a worker that ended
            pass
    return got


class Sampler(threading.Thread):
    """Peak of the summed RSS of the Ray workers, and their read bytes at the last sample."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_rss, self.reads, self.stop = 0, {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            workers = ray_workers()
            rss = 0
            for p in workers:
                try:
                    rss += p.memory_info().rss
                except Exception:  # noqa: BLE001
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            for pid, value in _rchar(workers).items():
                self.reads[pid] = value
            time.sleep(0.05)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--row-bytes", type=int, default=33_000)
    parser.add_argument("--rows-per-group", type=int, default=1_000_000)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args(argv)

    import pyarrow as pa
    import ray

    from pipeline.cluster import configure_ray_data
    from pipeline.config import SourceColumns
    from pipeline.run import items_dataset
    from pipeline.sources.index import IndexSettings, build_index
    from pipeline.sources.listing import list_inputs, plan_units
    from pipeline.storage import Storage

    with tempfile.TemporaryDirectory() as tmp:
        shard = pathlib.Path(tmp) / "train-00000.parquet"
        size = write_shard(shard, args.rows, args.row_bytes, args.rows_per_group)
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
        try:
            configure_ray_data()
            storage = Storage.from_env()
            index = build_index(plan_units(list_inputs((str(shard),), "auto", storage)),
                                IndexSettings(storage=storage, columns=SourceColumns()))
            sampler = Sampler()
            # workers that start during the run count their start-up reads (library files) too: the
            # bytes read are an upper bound
            before = _rchar(ray_workers())
            sampler.start()
            started = time.monotonic()
            items = items_dataset(index, pa.array([], pa.string()), storage)
            blocks = [bundle.num_rows() for bundle in items.iter_internal_ref_bundles()]
            seconds = time.monotonic() - started
            sampler.stop.set()
            sampler.join()
            read = sum(v - before.get(pid, 0) for pid, v in sampler.reads.items())
        finally:
            ray.shutdown()
    print(json.dumps({"rows": sum(blocks), "decode_blocks": len(blocks), "shard_mb": round(size / 1e6, 1),
                      "rows_per_group": min(args.rows_per_group, args.rows),
                      "workers_read_mb": round(read / 1e6, 1),
                      "reads_per_shard": round(read / size, 2),
                      "workers_peak_rss_mib": round(sampler.peak_rss / 2**20),
                      "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
