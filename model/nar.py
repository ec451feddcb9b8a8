"""The NAR loop (model-spec §3.2–3.8): draft with the BPE CTC head, slot, edit, collapse.

``NarModel.transcribe`` runs any number of utterances as one padding-free pack. The result for an
utterance never depends on the others in the call: every stage isolates utterances exactly (see
``packing.py``), so each equals the reference's batch-of-1 output. Which reference is set by the
model's numerics profile (``model/numerics.py``): the checkpoint's own hub code or the transformers
port; both run through this one code path and its three switches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .config import ConfigError, NarConfig
from .conformer import ConformerEncoder, EncoderLayouts, EncoderOutput
from .ctc import ctc_collapse, greedy_head, insert_slots
from .conformer import FINAL
from .editor import GraniteEditor, PackedSequences
from .features import FEATURE_DIM, log_mel
from .numerics import Numerics, resolve_numerics
from .packing import block_layout, offsets, positions
from .projector import Projector
from .text import TextDecoder


def joined_view(arrays: list) -> np.ndarray | None:
    """The one array that ``arrays`` tile end to end, or ``None`` when they do not.

    ``arrays`` are numpy views; they tile one array when they are writable, C-contiguous float32,
    share one base and each starts where the one before it ends (the views
    ``pipeline.stages.inference.pack_features`` returns). The result is a writable view of that
    memory, ``[Σ T, ...]`` (the arrays' trailing shape), so a pack reaches torch without a copy."""
    if not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        return None
    first = arrays[0]
    base = first.base
    if (not isinstance(base, np.ndarray) or base.dtype != np.float32 or not base.flags.c_contiguous
            or not base.flags.writeable):
        return None
    tail = first.shape[1:]
    address = first.__array_interface__["data"][0]
    start = address
    for a in arrays:
        if (a.base is not base or a.dtype != np.float32 or a.shape[1:] != tail or not a.flags.c_contiguous
                or not a.flags.writeable or not a.flags.aligned or a.__array_interface__["data"][0] != address):
            return None
        address += a.nbytes
    offset, misaligned = divmod(start - base.__array_interface__["data"][0], 4)
    count = (address - start) // 4
    if misaligned or offset < 0 or offset + count > base.size:
        return None
    return base.reshape(-1)[offset:offset + count].reshape((-1, *tail))


def _check_features_shape(shape) -> None:
    """Refuse anything but one utterance's ``[T >= 1, 160]`` features (``ValueError``)."""
    if len(shape) != 2 or shape[1] != FEATURE_DIM or shape[0] < 1:
        raise ValueError(f"each features array must be [T >= 1, {FEATURE_DIM}], got {tuple(shape)}")


@dataclass(frozen=True)
class Transcription:
    """One utterance's result.

    ``confidence`` is ``exp(mean log max-softmax)`` over the ``L`` editor positions of the last
    editing pass (logits divided by ``logits_scaling``): the geometric mean of the editor's
    top-choice probabilities, in (0, 1]. ``L = 2n + 1`` under transformers numerics and
    ``max(2n + 1, min_edit_sequence_length)`` under hub numerics, where ``n`` counts the ids the last
    pass was given (the draft when ``editing_steps == 1``), not the ids it produced. An empty output
    still has at least one position (a blank slot), so it is always defined. ``positions`` is ``L``,
    the weight of this result when confidences of segments are joined.
    """

    token_ids: list[int]
    draft_ids: list[int]
    text: str
    draft_text: str
    confidence: float
    logits: np.ndarray | None = None  # (L, V) float32 of the last pass (/ logits_scaling), when asked for
    positions: int = 1  # editor positions L of the last pass, for its INPUT hypothesis of n ids


@dataclass(frozen=True)
class Encoded:
    """Everything the editor needs, computed once per call and reused by every editing step."""

    lengths: list[int]
    encoder: EncoderOutput
    bpe_ids: torch.Tensor  # (num_windows,) argmax of the BPE head
    drafts: list[list[int]]
    audio_embeds: torch.Tensor  # (sum of T_b // downsample_rate, hidden): already / embedding_multiplier
    audio_tokens: list[int]


class NarBackbone(nn.Module):
    """Encoder, projector, editor and BPE head under the native ``model.*`` names."""

    def __init__(self, cfg: NarConfig) -> None:
        super().__init__()
        enc = cfg.encoder
        self.encoder = ConformerEncoder(enc)
        self.projector = Projector(cfg.projector, enc.hidden_dim, enc.num_exported)
        self.language_model = GraniteEditor(cfg.text)
        self.out_bpe = nn.Linear(enc.hidden_dim, enc.vocabulary_size)


class NarModel(nn.Module):
    """GraniteSpeechNar for inference. Build with :func:`model.load_model`.

    ``numerics`` (``"hub"``, ``"transformers"`` or ``None``: the checkpoint layout's own, see
    ``model/numerics.py``) picks whose arithmetic it reproduces; :attr:`numerics` names the profile in
    force and :meth:`features` computes that profile's features.
    """

    def __init__(self, config: NarConfig, decoder: TextDecoder | None = None, name: str = "",
                 numerics: str | Numerics | None = None) -> None:
        super().__init__()
        self.config = config
        self.profile = resolve_numerics(numerics, config.layout)
        self._export = self.export_layers(config, self.profile)
        self.model = NarBackbone(config)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(
            config.text.hidden_size, config.text.vocab_size, bias=False)
        self.decoder = decoder
        self.name = name
        # Editor attention path: None picks it from device and dtype (see model.editor.attention_backend).
        self.attention_backend: str | None = None

    @staticmethod
    def export_layers(config: NarConfig, profile: Numerics) -> tuple[int, ...]:
        """The encoder states the projector reads under ``profile``: the hub's
        ``encoder_layer_indices`` in its order, or the PR's ``cat_hidden_layers`` in layer order and
        then the final state (:data:`model.conformer.FINAL`). Raises :class:`ConfigError` when the
        checkpoint's layer list has no PR form (it does not end with the final layer)."""
        enc = config.encoder
        if profile.export_after_self_conditioning:
            return enc.hub_layers()
        if enc.cat_hidden_layers is None:
            raise ConfigError(
                f"config.json: 'encoder_layer_indices' {list(enc.encoder_layer_indices)} does not end with the final "
                "layer, which the transformers numerics always append; run this checkpoint with numerics='hub'"
            )
        return tuple(sorted(set(enc.cat_hidden_layers))) + (FINAL,)

    def with_numerics(self, numerics: str | Numerics) -> "NarModel":
        """This model under another numerics profile: a shallow copy sharing every weight (no
        memory). Raises ``ValueError`` for an unknown profile, ``ConfigError`` as :meth:`export_layers`."""
        profile = resolve_numerics(numerics, self.config.layout)
        other = copy.copy(self)
        other.profile, other._export = profile, self.export_layers(self.config, profile)
        return other

    @property
    def numerics(self) -> str:
        """The numerics profile in force: ``"hub"`` or ``"transformers"``."""
        return self.profile.name

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """16 kHz mono float32 ``(N,)`` -> ``(T, 160)`` features of this model's numerics profile
        (:func:`model.log_mel` with ``numerics=self.numerics``); ``ValueError`` for too short input."""
        return log_mel(waveform, numerics=self.numerics)

    @property
    def min_edit_length(self) -> int:
        """The slotted draft's minimum length: ``min_edit_sequence_length`` under hub numerics, else 1."""
        return self.config.min_edit_sequence_length if self.profile.min_edit_length else 1

    @property
    def device(self) -> torch.device:
        return self.model.out_bpe.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.out_bpe.weight.dtype

    def _head_weight(self) -> torch.Tensor:
        return self.model.language_model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def _as_tensor(self, feats) -> torch.Tensor:
        if isinstance(feats, np.ndarray) and not feats.flags.writeable:
            feats = feats.copy()  # e.g. np.frombuffer over Arrow bytes; torch wants writable memory
        t = torch.as_tensor(feats)
        _check_features_shape(t.shape)
        return t.to(dtype=torch.float32)

    @torch.inference_mode()
    def encode(self, features: list) -> Encoded:
        """Encoder, BPE draft and projector for a pack of ``[T, 160]`` feature arrays."""
        cfg = self.config
        whole = joined_view(features)
        if whole is not None:   # one pack buffer (the pipeline's): no per-array copies, no cat
            for f in features:
                _check_features_shape(f.shape)
            lengths = [int(f.shape[0]) for f in features]
            x = torch.from_numpy(whole)
        else:
            feats = [self._as_tensor(f) for f in features]
            lengths = [f.shape[0] for f in feats]
            x = torch.cat(feats)
        device = self.device
        x = x.to(device, non_blocking=x.is_pinned())  # (N, 160)
        layouts = EncoderLayouts.build(lengths, cfg.encoder, device)
        enc = self.model.encoder(x, layouts, self._export,
                                 export_after_self_conditioning=self.profile.export_after_self_conditioning)
        bpe = greedy_head(enc.pooled, self.model.out_bpe.weight, self.model.out_bpe.bias)
        drafts = ctc_collapse(bpe.ids, layouts.pooling.blocks_per_item, cfg.blank_token_id)

        windows = block_layout(lengths, cfg.projector.window_size, device)
        projected = self.model.projector(enc.hidden_cat, windows)
        # The hub's code divides only when scale_projected_embeddings is set (true in the released
        # config); the PR drops that key and always divides.
        if cfg.scale_projected_embeddings or self.profile.name != "hub":
            projected = projected / cfg.text.embedding_multiplier
        # Utterance b owns num_queries * windows_b rows; the editor uses the first T_b // downsample_rate.
        audio_tokens = [n // cfg.projector.downsample_rate for n in lengths]
        row_starts = torch.tensor(offsets([cfg.projector.num_queries * w for w in windows.blocks_per_item])[:-1])
        take = torch.repeat_interleave(row_starts, torch.tensor(audio_tokens)) + positions(audio_tokens)
        return Encoded(lengths, enc, bpe.ids, drafts, projected[take.to(device)], audio_tokens)

    @torch.inference_mode()
    def edit(self, encoded: Encoded, hypotheses: list[list[int]], *, keep_logits: bool = False):
        """One editing pass over every utterance: returns (greedy head result, per-utterance text lengths)."""
        cfg = self.config
        device = self.device
        slotted = [insert_slots(ids, cfg.blank_token_id, self.min_edit_length) for ids in hypotheses]
        text_lengths = [len(s) for s in slotted]
        seq_lengths = [a + t for a, t in zip(encoded.audio_tokens, text_lengths)]
        starts = torch.tensor(offsets(seq_lengths)[:-1])
        audio_at = torch.repeat_interleave(starts, torch.tensor(encoded.audio_tokens)) + positions(encoded.audio_tokens)
        text_at = torch.repeat_interleave(starts + torch.tensor(encoded.audio_tokens), torch.tensor(text_lengths)) \
            + positions(text_lengths)
        audio_at, text_at = audio_at.to(device), text_at.to(device)

        editor = self.model.language_model
        text_ids = torch.tensor([t for s in slotted for t in s], dtype=torch.long, device=device)
        inputs = torch.empty(sum(seq_lengths), cfg.text.hidden_size, dtype=self.dtype, device=device)
        inputs[audio_at] = encoded.audio_embeds.to(self.dtype)
        inputs[text_at] = editor.embed_tokens(text_ids)
        packed = PackedSequences(seq_lengths, positions(seq_lengths, device), cfg.text, self.dtype,
                                 backend=self.attention_backend)
        hidden = editor(inputs, packed)[text_at]  # (sum of L, hidden)
        head = greedy_head(hidden, self._head_weight(), scale=cfg.text.logits_scaling, keep_logits=keep_logits)
        return head, text_lengths

    @torch.inference_mode()
    def transcribe(self, features: list, editing_steps: int = 1, *, return_logits: bool = False) -> list[Transcription]:
        """Transcribe a list of ``[T, 160]`` feature arrays (see :meth:`features`) in one pack.

        ``editing_steps`` passes of the editor: the first from the BPE draft, each later one from the
        previous pass's output re-slotted (spec §3.8). The hub's own code runs one pass; under hub
        numerics the later passes apply the PR's loop with the hub's slot rule (minimum length).
        """
        return self._run(features, editing_steps, return_logits)[0]

    def _run(self, features: list, editing_steps: int, return_logits: bool) -> tuple[list[Transcription], Encoded | None]:
        """:meth:`transcribe`'s results and the pack's :class:`Encoded` (``None`` for no features)."""
        if isinstance(editing_steps, bool) or not isinstance(editing_steps, int) or editing_steps < 1:
            raise ValueError(f"editing_steps must be an integer >= 1, got {editing_steps!r}")
        if len(features) == 0:
            return [], None
        encoded = self.encode(features)
        hypotheses = encoded.drafts
        for step in range(editing_steps):
            last = step == editing_steps - 1
            head, text_lengths = self.edit(encoded, hypotheses, keep_logits=return_logits and last)
            hypotheses = ctc_collapse(head.ids, text_lengths, self.config.blank_token_id)
        mean_lp = [float(x.mean()) for x in head.max_logprob.split(text_lengths)]
        per_logits = (list(head.logits.split(text_lengths)) if return_logits else [None] * len(text_lengths))
        texts = self._decode(hypotheses)
        draft_texts = self._decode(encoded.drafts)
        return [
            Transcription(
                token_ids=ids, draft_ids=draft, text=text, draft_text=draft_text,
                confidence=float(np.exp(lp)),
                logits=None if lg is None else lg.cpu().numpy(), positions=n,
            )
            for ids, draft, text, draft_text, lp, lg, n in zip(hypotheses, encoded.drafts, texts, draft_texts,
                                                             mean_lp, per_logits, text_lengths)
        ], encoded

    def _decode(self, batch: list[list[int]]) -> list[str]:
        if self.decoder is None:
            return [""] * len(batch)
        return self.decoder.decode_batch(batch)

    @torch.inference_mode()
    def transcribe_with_alignment(self, features: list, editing_steps: int = 1):
        """:meth:`transcribe`, plus each result's CTC forced alignment to the BPE head of the same pack.

        Returns ``(results, alignments)``: ``results`` exactly as :meth:`transcribe` gives them,
        ``alignments[b]`` a :class:`model.alignment.TokenAlignment` of ``results[b].token_ids`` on
        utterance ``b``'s BPE-window grid (its encoder frames set the grid). The alignment reuses
        the pooled encoder states ``transcribe`` computed (no second forward); see
        ``model/alignment.py`` for what it computes and costs.
        """
        from .alignment import align_pack

        with torch.inference_mode():
            results, encoded = self._run(features, editing_steps, False)
        if not results:
            return [], []
        head = self.model.out_bpe
        alignments = align_pack(encoded.encoder.pooled, head.weight, head.bias, encoded.lengths,
                                self.config.encoder.pooling_window, self.config.blank_token_id,
                                [r.token_ids for r in results])
        return results, alignments
