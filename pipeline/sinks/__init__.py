"""Sinks: the output contract (schema), Parquet output, ``_summary.json``."""
