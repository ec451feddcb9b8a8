"""Test-only fault switches, read from the environment of an inference actor (off when unset).

``NLE_FAULT_EXIT_AFTER_BATCHES=k``: the actor process exits hard (``os._exit``) when asked for
batch k+1, losing that batch, as a crashed or preempted GPU worker would. With
``NLE_FAULT_ONCE_FILE=PATH`` only the first actor to create PATH does so (its restart survives).
``NLE_FAULT_SLOW_BATCH_S=s``: each batch takes ``s`` seconds longer (a slow GPU), so that a test
can interrupt a job half-way. The job forwards these variables to the actors through Ray's
``runtime_env``.
"""

from __future__ import annotations

import os
import time

FAULT_EXIT_AFTER_BATCHES = "NLE_FAULT_EXIT_AFTER_BATCHES"
FAULT_ONCE_FILE = "NLE_FAULT_ONCE_FILE"
FAULT_SLOW_BATCH_S = "NLE_FAULT_SLOW_BATCH_S"
FAULT_ENV_VARS = (FAULT_EXIT_AFTER_BATCHES, FAULT_ONCE_FILE, FAULT_SLOW_BATCH_S)


def fault_env(environ=None) -> dict[str, str]:
    """The fault switches set in ``environ`` (default: this process), to forward to actors."""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in FAULT_ENV_VARS if env.get(k)}


def should_exit(batches_done: int, environ=None) -> bool:
    """True when the switch says this actor dies before its next batch."""
    env = os.environ if environ is None else environ
    limit = env.get(FAULT_EXIT_AFTER_BATCHES)
    if not limit or batches_done < int(limit):
        return False
    once = env.get(FAULT_ONCE_FILE)
    if not once:
        return True
    try:
        os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def on_batch(batches_done: int) -> None:
    """Called by an inference actor before each batch: applies the switches that are set."""
    delay = os.environ.get(FAULT_SLOW_BATCH_S)
    if delay:
        time.sleep(float(delay))
    if should_exit(batches_done):
        os._exit(1)
