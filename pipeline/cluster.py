"""Connecting to Ray and the driver-wide Ray Data settings."""

from __future__ import annotations

# Storage errors Ray's Parquet writer retries with its own backoff (10 attempts, up to 32 s
# apart), added to Ray's defaults: connection loss and 5xx from S3-compatible servers.
RETRIED_WRITE_ERRORS = ("AWS Error NETWORK_CONNECTION", "Could not connect",
                        r"HTTP status 50[0234]", "AWS Error SERVICE_UNAVAILABLE",
                        "AWS Error INTERNAL_FAILURE")


def ensure_ray() -> None:
    """Join the cluster named by ``RAY_ADDRESS`` (set under ``ray job submit``) or start one here."""
    import ray

    if not ray.is_initialized():
        ray.init()


def configure_ray_data() -> None:
    """Ray Data settings of this driver, set before any dataset is built (datasets capture them):
    more storage errors retried by the writer, and worker errors raised as themselves (so that a
    :class:`StorageUnavailable` reaches the driver as such)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.retried_io_errors = list(dict.fromkeys([*context.retried_io_errors,
                                                    *RETRIED_WRITE_ERRORS]))
    context.raise_original_map_exception = True
