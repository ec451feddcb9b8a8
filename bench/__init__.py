"""The benchmark behind ``python -m jobs.benchmark`` (not part of the pipeline)."""
