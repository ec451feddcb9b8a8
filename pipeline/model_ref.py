"""Which checkpoint the inference actors load, checked on the driver before Ray starts.

A local folder is made absolute here, on the driver, so that actors with another working directory
(a head started elsewhere, ``ray job submit``) find it; ``label`` keeps it as the user gave it. A hub id is pinned to the commit the hub reports (so every actor
loads the same weights); offline, a cached snapshot is accepted. Neither → :class:`ModelUnavailable`.
Only metadata is touched here; the weights are loaded by the actors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.config import DEFAULT_MODEL, ConfigError

HUB_PROBE_TIMEOUT_S = 15.0


class ModelUnavailable(RuntimeError):
    """The model is neither a local folder, reachable on the hub, nor in the local cache."""


@dataclass(frozen=True)
class ModelSpec:
    """What each actor passes to ``load_model``."""

    name_or_path: str
    revision: str | None = None
    device: str | None = None      # None: CUDA when the actor sees one, else CPU
    dtype: str | None = None       # None: the model's default for the device
    label: str | None = None       # a local folder as the user gave it (shown, recorded)
    # The numerics profile ("hub" | "transformers") the decode tasks and the actors both use; None
    # until the driver resolves it (pipeline/numerics.py).
    numerics: str | None = None

    @property
    def shown(self) -> str:
        """The name to print and record: the folder as given, or the hub id."""
        return self.label or self.name_or_path


def looks_like_path(name: str) -> bool:
    """Whether a ``--model`` value that is no folder was meant as a local path rather than a hub
    id (``org/name``): it starts with ``.``, ``/`` or ``~``, ends with a separator, has other than
    exactly one ``/``, holds a backslash, or its first part is a folder here (``models/x``)."""
    if name.startswith((".", "/", "~")) or name.endswith(("/", os.sep)) or "\\" in name:
        return True
    if name.count("/") != 1:
        return True
    return os.path.isdir(name.split("/", 1)[0])


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _cached(name: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(name, "config.json", revision=revision)
    return isinstance(found, str)


def resolve_model(name: str, revision: str | None = None, device: str = "auto",
                  dtype: str | None = None) -> ModelSpec:
    """A :class:`ModelSpec` the actors can load, or :class:`ModelUnavailable`."""
    device_arg = None if device == "auto" else device
    if os.path.isdir(os.path.expanduser(name)):
        return ModelSpec(os.path.abspath(os.path.expanduser(name)), revision, device_arg, dtype,
                         label=name)
    if looks_like_path(name):
        raise ConfigError(f"--model {name}: no such folder; check the path (a checkpoint folder "
                          "holds config.json and *.safetensors) or pass a hub id such as "
                          f"{DEFAULT_MODEL}")
    if not _hub_offline():
        from huggingface_hub import HfApi

        try:
            info = HfApi().model_info(name, revision=revision, timeout=HUB_PROBE_TIMEOUT_S)
            return ModelSpec(name, info.sha or revision, device_arg, dtype)
        except Exception:  # no network, unknown repo, gated: fall back to the cache
            pass
    if _cached(name, revision):
        return ModelSpec(name, revision, device_arg, dtype)
    raise ModelUnavailable(f"model {name!r} cannot be fetched from the Hugging Face hub "
                           "(unreachable or offline) and is not in the local cache")
