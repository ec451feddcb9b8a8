"""The driver's choice of numerics profile (model-spec §9), made once and handed to every stage.

Features depend on the profile (the hub's code keeps ``N // 320`` frames, the PR's pads to one
more), and the decode tasks that compute them never load the model. So the driver resolves the
profile before Ray starts, from ``--numerics`` or else from the checkpoint's ``config.json`` (a
cheap read: the original layout computes as ``hub``, the native one as ``transformers``), and puts
it on the :class:`~pipeline.model_ref.ModelSpec` that the decode tasks and the inference actors
both receive: features and model always agree.
"""

from __future__ import annotations

import dataclasses
import os

from pipeline.config import ConfigError
from pipeline.model_ref import ModelSpec, ModelUnavailable


def hub_config_file(name: str, revision: str | None) -> str:
    """The local path of a hub model's ``config.json`` at ``revision`` (downloaded if needed: a
    few kB; the offline cache is honoured). Raises :class:`ModelUnavailable`."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(name, "config.json", revision=revision)
    except Exception as online_error:  # noqa: BLE001 - offline, gated, unknown revision: try the cache
        try:
            return hf_hub_download(name, "config.json", revision=revision, local_files_only=True)
        except Exception:  # noqa: BLE001
            raise ModelUnavailable(
                f"model {name!r}: its config.json (which says which numerics it computes as) cannot be "
                f"fetched ({type(online_error).__name__}) and is not cached; pass --numerics hub|transformers "
                "or a local checkpoint folder") from online_error


def resolve_numerics(spec: ModelSpec, requested: str | None) -> ModelSpec:
    """``spec`` with ``numerics`` set: ``requested`` when given (``--numerics``), else what
    ``spec.numerics`` already says, else the checkpoint's own profile from its ``config.json`` (for
    a hub id, that of the resolved snapshot). Raises :class:`ConfigError` for a config that cannot
    be read, :class:`ModelUnavailable` for a hub config that cannot be fetched."""
    from model import ConfigError as ModelConfigError
    from model import checkpoint_numerics

    if requested is None and spec.numerics is not None:
        requested = spec.numerics
    if requested is not None:
        try:
            return dataclasses.replace(spec, numerics=checkpoint_numerics(spec.name_or_path, requested))
        except ValueError as e:
            raise ConfigError(f"--numerics: {e}") from e
    folder = os.path.expanduser(spec.name_or_path)
    config_file = os.path.join(folder, "config.json") if os.path.isdir(folder) \
        else hub_config_file(spec.name_or_path, spec.revision)
    try:
        numerics = checkpoint_numerics(config_file)
    except (ModelConfigError, OSError) as e:
        raise ConfigError(f"--model {spec.shown}: {str(e).splitlines()[0]}") from e
    return dataclasses.replace(spec, numerics=numerics)
