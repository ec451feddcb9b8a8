"""The bounded retry helper and credential redaction, as pure functions."""

from __future__ import annotations

import pytest

from pipeline.retry import (
    StorageUnavailable, backoff_delays, find_cause, is_transient, retry_call,
)
from pipeline.storage import Storage, redact_env_credentials


def test_backoff_doubles_is_capped_and_fits_the_budget():
    assert backoff_delays(0) == []
    assert backoff_delays(1.0) == [0.5, 0.5]
    assert backoff_delays(20.0) == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]
    assert sum(backoff_delays(120.0)) == pytest.approx(120.0)
    assert max(backoff_delays(120.0)) == 8.0


class EndpointConnectionError(Exception):
    """Stands in for botocore's class of that name (recognised by name)."""


@pytest.mark.parametrize("exc, transient", [
    (ConnectionRefusedError(111, "refused"), True),
    (TimeoutError("read timed out"), True),
    (EndpointConnectionError("Could not connect to the endpoint URL"), True),
    (OSError("AWS Error NETWORK_CONNECTION during PutObject operation"), True),
    (OSError("AWS Error UNKNOWN (HTTP status 503) during GetObject"), True),
    (OSError(121, "We encountered an internal error, please try again."), True),  # s3fs: 500
    (OSError(16, "Please reduce your request rate."), True),                      # s3fs: 503
    (FileNotFoundError("s3://b/missing.flac"), False),
    (PermissionError("Access Denied"), False),
    (ValueError("bad header"), False),
])
def test_transient_or_permanent(exc, transient):
    assert is_transient(exc) is transient


def test_retry_call_retries_transient_errors_until_the_budget():
    sleeps, calls = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("Connection reset by peer")
        return "ok"

    assert retry_call(flaky, what="reading x", budget_s=10, sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0]

    sleeps.clear()

    def down():
        raise ConnectionRefusedError(111, "Connection refused key=SECRETabc")

    with pytest.raises(StorageUnavailable) as failure:
        retry_call(down, what="reading x", budget_s=2, sleep=sleeps.append,
                   redact=lambda s: s.replace("SECRETabc", "***"))
    assert sum(sleeps) == pytest.approx(2) and "SECRETabc" not in str(failure.value)
    assert "storage unreachable while reading x" in str(failure.value)
    assert "--resume" in str(failure.value)


def test_permanent_errors_are_not_retried():
    sleeps = []
    with pytest.raises(FileNotFoundError):
        retry_call(lambda: open("/nonexistent/x"), what="x", budget_s=60, sleep=sleeps.append)
    assert sleeps == []


def test_find_cause_walks_the_chain():
    try:
        try:
            raise StorageUnavailable("down")
        except StorageUnavailable as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert str(find_cause(outer, (StorageUnavailable,))) == "down"
        assert find_cause(outer, (KeyError,)) is None


def test_credentials_are_redacted_and_never_in_repr():
    storage = Storage.from_env(None, {"AWS_ACCESS_KEY_ID": "AKIDXYZ",
                                      "AWS_SECRET_ACCESS_KEY": "SECRETxyz123"})
    assert "SECRETxyz123" not in repr(storage) and "AKIDXYZ" not in repr(storage)
    assert storage.redact("key AKIDXYZ secret SECRETxyz123") == "key *** secret ***"
    assert redact_env_credentials("sig SECRETxyz123",
                                  {"AWS_SECRET_ACCESS_KEY": "SECRETxyz123"}) == "sig ***"
