"""A cheap check of a local ``--model`` folder on the driver, before Ray starts.

The actors load the weights (``load_model`` checks every key and shape); this catches what a user
can fix in one line without reading a byte of weights: a file instead of a folder, a folder that is
no checkpoint, a config of another architecture, pickle-only weights. Nothing in the folder is
executed or unpickled: ``config.json`` is parsed as JSON and weight files are only listed.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ConfigError

CONFIG_FILE = "config.json"
LAYOUT_HINT = "a checkpoint folder holds config.json and *.safetensors weights"


def check_local_checkpoint(name: str) -> None:
    """Raise :class:`ConfigError` (one line: the problem and the fix) for a local ``--model``
    that cannot be a usable checkpoint; a hub id or a plausible folder passes."""
    path = Path(name).expanduser()
    if not path.exists():
        return   # a hub id, or a missing folder: resolve_model says which
    if not path.is_dir():
        raise ConfigError(f"--model {name} is a file, not a checkpoint folder; pass the folder "
                          f"({LAYOUT_HINT})")
    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(f"--model {name} is not a model checkpoint: it has no {CONFIG_FILE}; "
                          f"pass a checkpoint folder ({LAYOUT_HINT}) or a hub id")
    _check_config(name, path / CONFIG_FILE)
    _check_weights(name, path)


def _check_config(name: str, config_file: Path) -> None:
    from model import ConfigError as ModelConfigError
    from model import NarConfig

    try:
        NarConfig.from_file(config_file)
    except (ModelConfigError, ValueError, OSError) as e:
        reason = str(e).splitlines()[0]
        raise ConfigError(f"--model {name} is not a usable Granite Speech NAR checkpoint: "
                          f"{reason}; pass a checkpoint of that model") from e


def _check_weights(name: str, folder: Path) -> None:
    """The loader's own listing of the weight files (safetensors only; pickle-only folders refused)."""
    from model import WeightError, weight_files

    try:
        weight_files(folder)
    except WeightError as e:
        raise ConfigError(f"--model {name}: {str(e).splitlines()[0]}") from e
