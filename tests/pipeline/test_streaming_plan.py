"""How the job's Ray dataset is laid out so that results stream to storage while decoding goes on.

Ray Data reserves the cluster's CPUs for upstream operators first; a downstream stage that asks
for a CPU while decoders and actors hold them all waits until decoding has finished, and a
1,000,000-row manifest then writes its first file only at the end. These tests pin the layout
that prevents it (real local Ray, the tiny checkpoint's spec; nothing is decoded or inferred):
only decoding and inference ask for CPUs, and the index reaches decoding already cut into blocks.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.cluster import LIGHT_TASK_CPUS, configure_ray_data
from pipeline.config import SourceColumns, TranscribeConfig, resolve_resources
from pipeline.model_ref import resolve_model
from pipeline.run import build_dataset, decode_block_rows, items_dataset
from pipeline.sources.index import IndexSettings, build_index
from pipeline.sources.listing import list_inputs, plan_units
from pipeline.storage import Storage
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.pipeline.corpus import write_manifest_jsonl

EMPTY = pa.array([], pa.string())


@pytest.mark.parametrize("rows, cpus, expected", [
    (40, 4, 16),            # small sets: never under 16 rows (Ray's per-block cost)
    (1_000, 2, 125),        # about 4 blocks per CPU
    (1_000_000, 2, 256),    # large sets: at most 256 rows
    (100_000, 1000, 25),
])
def test_decode_block_rows(rows, cpus, expected):
    assert decode_block_rows(rows, cpus) == expected


def _index(tmp_path, rows: int):
    clip = str(TINY_AUDIO / "a02.flac")
    manifest = write_manifest_jsonl(tmp_path / "m.jsonl",
                                    [{"id": f"u{i:03d}", "audio_filepath": clip} for i in range(rows)])
    configure_ray_data()
    storage = Storage.from_env()
    listings = list_inputs((str(manifest),), "manifest", storage)
    index = build_index(plan_units(listings), IndexSettings(storage=storage, columns=SourceColumns()))
    return index, storage, manifest


def _logical_ops(dataset) -> list:
    """The dataset's logical operators, source first (Ray Data's own plan objects)."""
    ops, op = [], dataset._logical_plan.dag
    while op is not None:
        ops.append(op)
        op = op.input_dependencies[0] if op.input_dependencies else None
    return ops[::-1]


def test_items_reach_decoding_in_blocks_already_cut(ray_session, tmp_path):
    """40 rows on the test session's 4 CPUs: blocks of 16, 16 and 8 rows, every id once; the
    cut runs inside the fetch tasks (fused, no CPU), so no task cutting blocks holds a CPU the
    decoders need, and it comes after the audio is read (a row group is never cut before)."""
    index, storage, _ = _index(tmp_path, 40)
    items = items_dataset(index, EMPTY, storage)
    sizes = [bundle.num_rows() for bundle in items.iter_internal_ref_bundles()]
    assert sorted(sizes, reverse=True) == [16, 16, 8]
    assert sorted(r["id"] for r in items.take_all()) == [f"u{i:03d}" for i in range(40)]
    ops = _logical_ops(items)
    names = [type(op).__name__ for op in ops]
    assert names == ["InputData", "MapBatches", "StreamingRepartition"], names
    assert ops[-1].ray_remote_args == {"num_cpus": LIGHT_TASK_CPUS}
    assert "MapBatches(prefetch_parquet)->StreamingRepartition" in items.stats()


def test_fetch_tasks_ask_for_the_largest_row_groups_memory_and_stay_fused(ray_session, tmp_path):
    """Parquet shards with row groups of two sizes: the fetch stage and its fused cut ask Ray for
    3x the largest row group's audio bytes (the index found it in the footers), no CPU, and Ray
    Data still runs the cut inside the fetch tasks; the rows arrive whole."""
    import pyarrow.parquet as pq

    from pipeline.run import fetch_memory_request
    from pipeline.stages.row_groups import FETCH_COPIES, FETCH_WORKER_BYTES
    from tests.pipeline.corpus import write_hf_parquet

    clip = (TINY_AUDIO / "a02.flac").read_bytes()
    cells = [clip + i.to_bytes(2, "big") for i in range(40)]   # distinct: no dictionary page
    (tmp_path / "pq").mkdir()
    big = write_hf_parquet(tmp_path / "pq" / "big-0.parquet", [(c, None) for c in cells[:30]],
                           [f"t{i}" for i in range(30)], rows_per_group=30)
    write_hf_parquet(tmp_path / "pq" / "small-0.parquet", [(c, None) for c in cells[30:]],
                     [f"s{i}" for i in range(10)], rows_per_group=5)
    configure_ray_data()
    storage = Storage.from_env()
    index = build_index(plan_units(list_inputs((str(tmp_path / "pq"),), "auto", storage)),
                        IndexSettings(storage=storage, columns=SourceColumns()))
    group = pq.ParquetFile(big).metadata.row_group(0)      # audio.bytes, audio.path, text
    largest = group.column(0).total_uncompressed_size + group.column(1).total_uncompressed_size
    assert index.largest_group_bytes == largest and largest > 30 * len(clip)
    assert index.large_groups == ()                        # no budget given: none reported
    memory = fetch_memory_request(largest)
    assert memory == FETCH_WORKER_BYTES + FETCH_COPIES * largest
    items = items_dataset(index, EMPTY, storage)
    ops = _logical_ops(items)
    assert [type(op).__name__ for op in ops] == ["InputData", "MapBatches", "StreamingRepartition"]
    assert ops[1].ray_remote_args == ops[2].ray_remote_args == {"num_cpus": LIGHT_TASK_CPUS,
                                                                "memory": memory}
    rows = items.take_all()
    assert "MapBatches(prefetch_parquet)->StreamingRepartition" in items.stats()
    assert sorted(r["id"] for r in rows) == sorted(
        [f"big-0/{i}" for i in range(30)] + [f"small-0/{i}" for i in range(10)])
    assert all(r["error"] is None for r in rows)
    assert {r["id"]: r["data"] for r in rows} == {
        **{f"big-0/{i}": cells[i] for i in range(30)}, **{f"small-0/{i}": cells[30 + i] for i in range(10)}}
    assert fetch_memory_request(0) is None


def test_only_decoding_and_inference_ask_for_cpus(ray_session, tmp_path):
    import ray

    index, storage, manifest = _index(tmp_path, 20)
    config = TranscribeConfig(inputs=(str(manifest),), output=str(tmp_path / "out"),
                              model=str(TINY_MODEL), device="cpu", actors=(1, 1))
    resources = resolve_resources(config, ray.cluster_resources())
    dataset = build_dataset(index, EMPTY, config, resolve_model(str(TINY_MODEL), device="cpu"),
                            storage, resources)
    cpus = {op.name.split("[")[0]: op.ray_remote_args.get("num_cpus")
            for op in _logical_ops(dataset) if hasattr(op, "ray_remote_args")}
    assert cpus == {"MapBatches(prefetch_parquet)": LIGHT_TASK_CPUS,
                    "StreamingRepartition": LIGHT_TASK_CPUS,
                    "MapBatches(decode_batch)": 1,
                    "MapBatches(Transcriber)": resources.num_cpus,
                    "MapBatches(score_batch)": LIGHT_TASK_CPUS}
    assert LIGHT_TASK_CPUS == 0
