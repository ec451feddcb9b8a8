"""The job's own Parquet outputs read back by Ray Data's read tasks (``read_parquet_by_tasks``), not
by the footer-actor pool Ray 2.60's default reader starts for every read: the same rows, and the
caller's reader setting left as it was."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from ray.data import DataContext

from pipeline.cluster import read_parquet_by_tasks


@pytest.mark.parametrize("v2", [True, False])
def test_rows_read_back_by_read_tasks_and_the_setting_kept(tmp_path, v2):
    for shard in range(3):
        pq.write_table(pa.table({"id": [f"{shard}-{i}" for i in range(4)], "n": list(range(4))}),
                       tmp_path / f"part-{shard}.parquet")
    context = DataContext.get_current()
    before = context.use_datasource_v2
    context.use_datasource_v2 = v2
    try:
        ds = read_parquet_by_tasks(str(tmp_path), pafs.LocalFileSystem())
        assert context.use_datasource_v2 is v2
    finally:
        context.use_datasource_v2 = before
    # V1's one Read operator; the V2 reader would plan ListFiles -> ReadFiles (the actor pool).
    assert type(ds._logical_plan.dag).__name__ == "Read"
    rows = sorted((r["id"], r["n"]) for r in ds.take_all())
    assert rows == sorted((f"{s}-{i}", i) for s in range(3) for i in range(4))
