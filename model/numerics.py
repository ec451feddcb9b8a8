"""Numerics profiles: which reference's arithmetic the model reproduces (model-spec §9).

Two codes run this checkpoint and they compute different token ids from the same weights and audio:

* ``"hub"``: the checkpoint's own remote code on the Hugging Face Hub (``trust_remote_code``; revision
  ``99a4df9007ac5682f9daa093fb7008ff606e9a5d`` is what the Open ASR Leaderboard pins). Every published
  figure (model card, leaderboard) comes from it.
* ``"transformers"``: the native port, transformers pull request #46031 at ``3acfbffd``.

They differ in exactly three places, the three switches of :class:`Numerics`; everything else (the
weights, every layer, the blank and its collapse, the logits divided by ``logits_scaling``) is shared
and runs through one code path.

Which profile applies by default: a checkpoint runs as its own code does. The original layout (the
hub's, ``encoder_layer_indices``) computes as ``hub``; the native layout (transformers' conversion,
``cat_hidden_layers``) as ``transformers``. :func:`checkpoint_numerics` tells which from ``config.json``
alone, without reading a weight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

NUMERICS = ("hub", "transformers")
# The revision of the hub checkpoint whose own code the Open ASR Leaderboard runs (granite/run_eval_nar.py).
LEADERBOARD_REVISION = "99a4df9007ac5682f9daa093fb7008ff606e9a5d"


@dataclass(frozen=True)
class Numerics:
    """One profile: the three points where the hub's code and the PR's compute differently.

    * ``truncate_frames``: the log-mel of ``N`` samples is cut to its first ``2 * (N // 320)`` frames
      and normalised over those (``N // 320`` encoder frames; no frame at all for ``N < 320``), instead
      of padded to an even count (``ceil((N // 160 + 1) / 2)`` encoder frames). Model-spec §9.1, §2.
    * ``min_edit_length``: the slotted draft is padded with trailing blanks to
      ``max(2n + 1, min_edit_sequence_length)`` positions, instead of exactly ``2n + 1``. §9.2, §3.4.
    * ``export_after_self_conditioning``: the self-conditioning layer's hidden state goes to the
      projector after the self-conditioning add, instead of before it. §9.3, §3.1.
    """

    name: str
    truncate_frames: bool
    min_edit_length: bool
    export_after_self_conditioning: bool

    def __str__(self) -> str:
        return self.name


HUB = Numerics("hub", truncate_frames=True, min_edit_length=True, export_after_self_conditioning=True)
TRANSFORMERS = Numerics("transformers", truncate_frames=False, min_edit_length=False,
                        export_after_self_conditioning=False)
PROFILES = {p.name: p for p in (HUB, TRANSFORMERS)}
LAYOUT_NUMERICS = {"original": "hub", "native": "transformers"}


def get_numerics(numerics: str | Numerics) -> Numerics:
    """The :class:`Numerics` named ``numerics`` (``"hub"`` or ``"transformers"``); ``ValueError`` otherwise."""
    if isinstance(numerics, Numerics):
        return numerics
    try:
        return PROFILES[str(numerics)]
    except KeyError:
        raise ValueError(f"numerics {numerics!r} is not one of {', '.join(NUMERICS)}") from None


def layout_numerics(layout: str) -> str:
    """The profile a checkpoint of weight ``layout`` (``"original"`` or ``"native"``) computes as."""
    return LAYOUT_NUMERICS[layout]


def resolve_numerics(requested: str | Numerics | None, layout: str) -> Numerics:
    """``requested`` when given, else the profile of ``layout`` (the checkpoint's own code)."""
    return get_numerics(layout_numerics(layout) if requested is None else requested)


def checkpoint_numerics(folder: str | Path, requested: str | None = None) -> str:
    """The profile a checkpoint folder computes as, from its ``config.json`` alone (no weights read):
    ``requested`` if given (checked), else ``"hub"`` for the original layout, ``"transformers"`` for the
    native one. Raises :class:`model.ConfigError` for a config that is no GraniteSpeechNar config,
    ``FileNotFoundError`` when the folder has no ``config.json``."""
    from .config import ConfigError, detect_layout

    if requested is not None:
        return get_numerics(requested).name
    path = Path(folder)
    path = path if path.name == "config.json" else path / "config.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read model config {path}: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError("config.json must hold a JSON object")
    return layout_numerics(detect_layout(raw))
