"""Each Parquet row group read once: blocks cut only after the audio is read, inside the fetch tasks.

A Parquet shard's audio is read a row group at a time (its audio column chunk: pyarrow cannot read
part of one). Ray Data's ``repartition(target_num_rows_per_block=N)`` cuts blocks anywhere, so
cut before the fetch it gives every piece of a big row group its own read of the whole group (a
3,000-row, 419 MB row group was read 12 times). Here the index keeps whole row groups per block up
to the fetch, and the cut into decode-sized blocks runs after it, fused into the fetch tasks: a
streaming repartition with the fetch stage's own compute and no CPU request, which Ray Data fuses
into the preceding ``map_batches`` (its operator-fusion rule for ``MapBatches ->
StreamingRepartition``), so that the fetch tasks emit blocks of ``rows`` rows themselves.

Memory of a fetch task: one row group's audio column (read and decoded by pyarrow), its cells as
Python bytes and the ``data`` column built from them (``FETCH_COPIES``), plus the blocks it has
not yet handed on. The index finds the largest row group (``Index.largest_group_bytes``) and the
fetch stage asks Ray for that much memory (``pipeline.run.fetch_memory_request``); a row group
bigger than a decode task's memory request (``pipeline.run.row_group_note_budget``) is reported
(a console note and ``_summary.json`` ``notes``).
"""

from __future__ import annotations


# The fetch task that reads a row group whole asks Ray for FETCH_WORKER_BYTES (the worker process
# itself with pyarrow and the pipeline loaded: about 250 MiB measured) plus FETCH_COPIES times the
# row group's audio bytes. A request under what the worker uses makes Ray Data warn on the console.
# A 420 MB row group's fetch task used 1.7 GiB (about 3.7x its audio beside the worker); Ray
# Data's memory check wants 25 % more than the use.
FETCH_COPIES = 5
FETCH_WORKER_BYTES = 512 * 1024 ** 2


def fetch_task_bytes(largest_group_bytes: int) -> int:
    """Memory a fetch task holding the largest row group (``largest_group_bytes`` of audio) uses."""
    return FETCH_WORKER_BYTES + FETCH_COPIES * largest_group_bytes
# Where ``read_corpus`` leaves its largest row group's bytes for the transcriber's fetch stage:
# the Dataset's own DataContext, which the datasets derived from it keep.
LARGEST_GROUP_CONFIG = "nle_pipeline.largest_row_group_bytes"
# ... and the index's row count, which sizes the decode blocks without counting the Dataset again
INDEX_ROWS_CONFIG = "nle_pipeline.index_rows"


def cut_blocks(dataset, rows: int, memory: int | None = None):
    """``dataset`` (the output of a light ``map_batches`` stage, ``pipeline.cluster.light_tasks``)
    cut into blocks of at most ``rows`` rows by the same tasks; ``memory``: the bytes that stage
    asks Ray for (Ray Data fuses only stages with the same remote arguments).

    Ray Data's public ``repartition`` asks for one CPU per task and so never fuses into a
    no-CPU stage; the same logical operator is built here with the light stages' resources. On a
    Ray whose internals differ, the public ``repartition`` is used (the same blocks, in tasks of
    their own)."""
    from pipeline.cluster import light_tasks

    try:
        from ray.data import Dataset
        from ray.data._internal.logical.interfaces import LogicalPlan
        from ray.data._internal.logical.operators import StreamingRepartition

        op = StreamingRepartition(target_num_rows_per_block=rows,
                                  input_dependencies=[dataset._logical_plan.dag],
                                  ray_remote_args=light_remote_args(memory),
                                  compute=light_tasks())
        return Dataset._from_parent(dataset, LogicalPlan(op, dataset.context))
    except (ImportError, TypeError, AttributeError):
        return dataset.repartition(target_num_rows_per_block=rows)


def light_remote_args(memory: int | None) -> dict:
    """The fetch stage's (and its fused cut's) Ray arguments: no CPU, ``memory`` bytes if any."""
    from pipeline.cluster import LIGHT_TASK_CPUS

    return {"num_cpus": LIGHT_TASK_CPUS, **({"memory": memory} if memory else {})}


MIB = 1024 ** 2


def large_groups_note(groups: tuple[tuple[str, int], ...], budget: int) -> str | None:
    """The one console line (and ``_summary.json`` note) for row groups whose audio is bigger
    than ``budget`` bytes (``pipeline.run.row_group_note_budget``): ``None`` when there are none."""
    if not groups:
        return None
    where, size = max(groups, key=lambda g: g[1])
    more = f" and {len(groups) - 1} more" if len(groups) > 1 else ""
    return (f"{len(groups)} Parquet row group(s) hold more audio than a decode task's memory "
            f"budget ({budget / MIB:.0f} MiB), the largest {where} ({size / MIB:.0f} MiB){more}; "
            f"each is read whole by one fetch task, which asks Ray for "
            f"{fetch_task_bytes(size) / MIB:.0f} MiB ({FETCH_WORKER_BYTES / MIB:.0f} MiB + "
            f"{FETCH_COPIES}x the group): write the shards with smaller row groups "
            "(pyarrow.parquet.write_table(..., row_group_size=100)) to bound it")
