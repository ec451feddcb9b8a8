"""Driver cost of indexing a large manifest: python notes/ingest_scale.py ROWS [FOLDER]

Writes a ROWS-row NeMo manifest (distinct ids, paths only: indexing opens no audio), starts Ray,
then times listing + index tasks + the driver's Arrow id work, and reports the driver's peak RSS.
"""

import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    folder = Path(sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp())
    manifest = folder / "big.jsonl"
    with open(manifest, "w") as f:
        for i in range(rows):
            f.write(json.dumps({"id": f"utt{i:08d}", "audio_filepath": f"clips/{i:08d}.flac",
                                "text": "a short reference text", "duration": 1.0}) + "\n")
    import ray

    from pipeline.cluster import configure_ray_data
    from pipeline.config import SourceColumns
    from pipeline.sources.index import IndexSettings, build_index
    from pipeline.sources.listing import list_inputs, plan_units
    from pipeline.storage import Storage

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    configure_ray_data()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.monotonic()
    storage = Storage.from_env()
    listings = list_inputs((str(manifest),), "auto", storage)
    index = build_index(plan_units(listings), IndexSettings(storage=storage, columns=SourceColumns()))
    elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": index.rows, "index_seconds": round(elapsed, 2),
                      "index_blocks": index.dataset.num_blocks(),
                      "driver_peak_rss_bytes": peak, "driver_rss_after_ray_init_bytes": rss_before,
                      "duplicates": len(index.duplicate_orders)}))
    ray.shutdown()


if __name__ == "__main__":
    main()
