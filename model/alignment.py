"""Token and word times from the model's own BPE CTC head (model-spec §3.2): forced alignment.

The encoder's BPE head emits one distribution over the LLM vocabulary per ``pooling_window``
encoder frames (4 × 20 ms = 80 ms in the released config). The final transcript's token ids are
force-aligned to that head with a CTC Viterbi: the single most probable CTC path (blank between
tokens optional, mandatory between two equal tokens) that collapses to exactly those ids. No
second model and no second forward run: the encoder's pooled states of the same pack are reused.

* The grid is the encoder's: BPE window ``k`` of an utterance covers encoder frames
  ``[k·P, min((k+1)·P, T))`` and so seconds ``[k·P·0.02, min((k+1)·P, T)·0.02)`` (``T`` its
  encoder frames, which the numerics profile sets: ``N // 320`` under hub, ``ceil((N//160+1)/2)``
  under transformers; ``P`` the pooling window).
* A token's time is the span of the windows its path state occupies (first to last, inclusive);
  a word's time runs from its first token's start to its last token's end.
* A token's figure is its log posterior under the head (the full-vocabulary softmax) at each of
  its windows; a word's ``confidence`` is the geometric mean of those posteriors over all its
  tokens' windows (``exp`` of the mean log posterior: the same form as the row's ``confidence``).
  It says how strongly the acoustic head supports the word where it was placed; where the editor
  changed the draft, it is low.

Only the transcript's own tokens and the blank are scored at every window (a ``[windows, n + 1]``
matrix); the full-vocabulary normaliser is computed only at the windows the path gives to a token.
The Viterbi path does not need it: every path visits one state per window, so a per-window constant
moves all paths alike.

Why our own Viterbi: torchaudio's ``forced_align`` has no build for torch 2.13;
``ctc-segmentation`` scores the full ``[T, V]`` matrix with its own segmentation recursion (not the
CTC optimum), and ``ctc-forced-aligner`` brings onnxruntime, librosa and model downloads. The
recursion here is checked against a brute-force search over every valid CTC path
(``tests/model/test_alignment.py``).
"""

from __future__ import annotations

import codecs
import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

FRAME_SECONDS = 0.02  # one stacked feature frame = one encoder frame (model-spec §2)
# Alignment statuses (a row's ``timestamps_status``).
OK, EMPTY, TOO_MANY_TOKENS, OUTSIDE_HEAD = "ok", "empty", "too_many_tokens", "token_outside_head"
# Batched Viterbi work bound: utterances x windows x states per numpy step.
MAX_VITERBI_CELLS = 1 << 21
# Emission matrix work bound: utterances x windows per batched matmul.
MAX_EMISSION_ROWS = 1 << 14


@dataclass(frozen=True)
class TokenAlignment:
    """One utterance's CTC forced alignment on its BPE-window grid.

    ``first[i]``/``last[i]``: the first and last window (inclusive) of token ``i``;
    ``logpost_sum[i]``: the sum of its log posteriors over those windows (``last - first + 1`` of
    them). Empty arrays unless ``status == "ok"``. ``frames``: the utterance's encoder frames;
    ``window_frames``: encoder frames per window.
    """

    status: str
    first: np.ndarray
    last: np.ndarray
    logpost_sum: np.ndarray
    frames: int
    window_frames: int

    def token_times(self) -> tuple[np.ndarray, np.ndarray]:
        """(start_s, end_s) of every token in seconds of the utterance (float64, ``(n,)`` each)."""
        frame = FRAME_SECONDS
        start = self.first * self.window_frames * frame
        end = np.minimum((self.last + 1) * self.window_frames, self.frames) * frame
        return start.astype(np.float64), end.astype(np.float64)


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float
    confidence: float


def min_windows(tokens) -> int:
    """Windows a CTC path needs for ``tokens``: one per token plus a blank between equal neighbours."""
    tokens = list(tokens)
    return len(tokens) + sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)


def _state_columns(n: int) -> np.ndarray:
    """Extended state ``s`` (blank, t1, blank, ..., tn, blank) → emission column (0 = blank, i+1 = ti)."""
    cols = np.zeros(2 * n + 1, dtype=np.int64)
    cols[1::2] = np.arange(1, n + 1)
    return cols


def _skip_penalty(tokens: np.ndarray, width: int) -> np.ndarray:
    """``(width,)``: 0 where state ``s`` may be entered from ``s - 2`` (a token unlike the one before), else -inf."""
    pen = np.full(width, -np.inf)
    n = len(tokens)
    if n > 1:
        differs = tokens[1:] != tokens[:-1]
        pen[3:2 * n:2] = np.where(differs, 0.0, -np.inf)
    return pen


def viterbi(emissions: list[np.ndarray], targets: list[np.ndarray], *,
            use_compiled: bool = True) -> list[np.ndarray | None]:
    """CTC forced alignment of several utterances.

    With numba (a dependency) the recursion runs compiled, one utterance at a time (about
    ``windows × states`` steps of a few ns); without it, or with ``use_compiled=False``, as one
    numpy step per window for all utterances at once. Both give the same paths.

    ``emissions[b]``: ``(T_b, n_b + 1)`` scores (log-probabilities, or logits: a per-window
    constant does not change the path), column 0 the blank, column ``i + 1`` target ``i``;
    ``targets[b]``: ``(n_b,)`` the target ids (only compared with each other: equal neighbours need
    a blank between them). Returns per utterance the ``(T_b,)`` extended-state path (state ``2i+1``
    = target ``i``, even states = blank), or ``None`` when ``T_b < min_windows`` (no valid path).
    Ties go to the state that stays, then to the one that advances by one.
    """
    out: list[np.ndarray | None] = [None] * len(emissions)
    todo = [b for b in range(len(emissions))
            if len(targets[b]) > 0 and emissions[b].shape[0] >= min_windows(targets[b])]
    compiled = _compiled_loop() if use_compiled else None
    if compiled is not None:
        for b in todo:
            n = len(targets[b])
            scores = np.ascontiguousarray(np.asarray(emissions[b], dtype=np.float64)[:, _state_columns(n)])
            out[b] = compiled(scores, _skip_penalty(np.asarray(targets[b]), 2 * n + 1) == 0.0)
        return out
    todo.sort(key=lambda b: (emissions[b].shape[0], len(targets[b])))
    group: list[int] = []
    for b in todo:
        t_max = emissions[b].shape[0]
        s_max = max([2 * len(targets[g]) + 1 for g in group] + [2 * len(targets[b]) + 1])
        if group and (len(group) + 1) * t_max * s_max > MAX_VITERBI_CELLS:
            _viterbi_group(group, emissions, targets, out)
            group = []
        group.append(b)
    if group:
        _viterbi_group(group, emissions, targets, out)
    return out


def _viterbi_group(group: list[int], emissions, targets, out) -> None:
    lengths = np.array([emissions[b].shape[0] for b in group])
    widths = [2 * len(targets[b]) + 1 for b in group]
    B, T, S = len(group), int(lengths.max()), max(widths)
    scores = np.full((T, B, S), -np.inf)
    skip = np.full((B, S), -np.inf)
    for j, b in enumerate(group):
        cols = _state_columns(len(targets[b]))
        scores[:lengths[j], j, :widths[j]] = np.asarray(emissions[b], dtype=np.float64)[:, cols]
        skip[j, :widths[j]] = _skip_penalty(np.asarray(targets[b]), widths[j])
    delta = np.full((B, S), -np.inf)
    delta[:, :2] = scores[0, :, :2]
    back = np.zeros((T, B, S), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    one = np.full((B, S), -np.inf)
    two = np.full((B, S), -np.inf)
    for t in range(1, T):
        one[:, 1:] = delta[:, :-1]
        np.add(delta[:, :-2], skip[:, 2:], out=two[:, 2:])
        from_one = one > delta  # ties stay
        best = np.maximum(delta, one)
        from_two = two > best
        step = from_one.astype(np.int8)
        step[from_two] = 2
        best = np.where(from_two, two, best) + scores[t]
        live = t < lengths
        if live.all():
            back[t], delta = step, best
        else:
            back[t] = np.where(live[:, None], step, 0)
            delta = np.where(live[:, None], best, delta)
    rows = np.arange(B)
    widths_a = np.array(widths)
    end_blank, end_token = delta[rows, widths_a - 1], delta[rows, widths_a - 2]
    state = np.where(end_token > end_blank, widths_a - 2, widths_a - 1)
    paths = np.zeros((B, T), dtype=np.int64)
    for t in range(T - 1, -1, -1):
        live = t < lengths
        paths[live, t] = state[live]
        state = np.where(live, state - back[t, rows, state], state)
    for j, b in enumerate(group):
        out[b] = paths[j, :lengths[j]]


def _viterbi_loop(scores: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """One utterance's recursion: ``scores`` ``(T, S)`` per extended state, ``skip`` ``(S,)`` bool
    (state ``s`` may be entered from ``s - 2``); the ``(T,)`` best path, ties as in :func:`viterbi`.
    Plain loops, written for numba."""
    T, S = scores.shape
    delta = np.full(S, -np.inf)
    new = np.empty(S)
    back = np.zeros((T, S), dtype=np.int8)
    delta[0] = scores[0, 0]
    if S > 1:
        delta[1] = scores[0, 1]
    for t in range(1, T):
        for s in range(S):
            best = delta[s]
            step = 0
            if s >= 1 and delta[s - 1] > best:
                best = delta[s - 1]
                step = 1
            if s >= 2 and skip[s] and delta[s - 2] > best:
                best = delta[s - 2]
                step = 2
            new[s] = best + scores[t, s]
            back[t, s] = step
        delta, new = new, delta
    state = S - 2 if S >= 2 and delta[S - 2] > delta[S - 1] else S - 1
    path = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = state
        state -= back[t, state]
    return path


@functools.lru_cache(maxsize=1)
def _compiled_loop():
    """:func:`_viterbi_loop` compiled by numba (cached on disk), or ``None`` without numba."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(_viterbi_loop)


def token_spans(path: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last window of each of ``n`` tokens on an extended-state ``path``."""
    windows = np.arange(path.size)
    on_token = path % 2 == 1
    token = path[on_token] // 2
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    # Each token's windows are contiguous; reversed assignment keeps the first, plain keeps the last.
    first[token[::-1]] = windows[on_token][::-1]
    last[token] = windows[on_token]
    return first, last


@torch.no_grad()
def label_scores(pooled: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 windows: list[int], labels: list[list[int]]) -> list[np.ndarray]:
    """Logits of each utterance's own labels at each of its windows, in float32.

    ``pooled``: ``(sum(windows), D)`` the BPE head's input for the pack; ``weight``/``bias``: the
    head (``(V, D)``, ``(V,)``); ``labels[b]``: ids to score for utterance ``b``. Returns
    ``(windows[b], len(labels[b]))`` per utterance. Utterances are batched (padded ``bmm``),
    at most :data:`MAX_EMISSION_ROWS` padded windows at a time; nothing ``(windows, V)`` is built.
    """
    starts = np.concatenate([[0], np.cumsum(windows)])
    out: list[np.ndarray | None] = [None] * len(windows)
    order = sorted((b for b in range(len(windows)) if labels[b]), key=lambda b: windows[b])
    i = 0
    while i < len(order):
        w_max = windows[order[i]]
        j = i
        while j < len(order) and (j - i + 1) * max(w_max, windows[order[j]]) <= MAX_EMISSION_ROWS:
            w_max = max(w_max, windows[order[j]])
            j += 1
        j = max(j, i + 1)
        _score_group(order[i:j], pooled, weight, bias, windows, labels, starts, out)
        i = j
    for b in range(len(windows)):
        if out[b] is None:
            out[b] = np.zeros((windows[b], len(labels[b])), dtype=np.float32)
    return out


def _score_group(group, pooled, weight, bias, windows, labels, starts, out) -> None:
    device = pooled.device
    w_max = max(windows[b] for b in group)
    k_max = max(len(labels[b]) for b in group)
    rows = torch.zeros(len(group), w_max, dtype=torch.long)
    ids = torch.zeros(len(group), k_max, dtype=torch.long)
    for j, b in enumerate(group):
        rows[j, :windows[b]] = torch.arange(starts[b], starts[b] + windows[b])
        ids[j, :len(labels[b])] = torch.tensor(labels[b])
    rows, ids = rows.to(device), ids.to(device)
    x = pooled[rows].float()  # (G, W, D)
    w = weight[ids].float()  # (G, K, D)
    scores = torch.bmm(x, w.transpose(1, 2))  # (G, W, K)
    if bias is not None:
        scores = scores + bias[ids].float()[:, None, :]
    scores = scores.cpu().numpy()
    for j, b in enumerate(group):
        out[b] = scores[j, :windows[b], :len(labels[b])]


@torch.no_grad()
def head_log_posteriors(pooled_rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        ids: torch.Tensor, max_elements: int = 1 << 26) -> torch.Tensor:
    """``log softmax(pooled_rows @ weight.T + bias)[r, ids[r]]`` → ``(R,)`` float32.

    The logits are computed as the greedy head computes them (model dtype, then float32) in row
    chunks of at most ``max_elements`` logits, so no ``(R, V)`` matrix is kept.
    """
    chunk = max(1, max_elements // max(1, weight.shape[0]))
    parts = []
    for start in range(0, pooled_rows.shape[0], chunk):
        logits = F.linear(pooled_rows[start:start + chunk], weight, bias).float()
        picked = logits.gather(1, ids[start:start + chunk, None])[:, 0]
        parts.append(picked - torch.logsumexp(logits, dim=-1))
    return torch.cat(parts) if parts else pooled_rows.new_zeros(0, dtype=torch.float32)


def align_pack(pooled: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               frames: list[int], window_frames: int, blank: int,
               transcripts: list[list[int]]) -> list[TokenAlignment]:
    """Force-align each utterance's ``transcripts[b]`` to the BPE head over its pooled windows.

    ``pooled``: ``(sum of ceil(frames[b] / window_frames), D)``, the pack's pooled encoder states
    in utterance order; ``frames[b]``: utterance ``b``'s encoder frames. Statuses: ``ok``;
    ``empty`` (no token); ``too_many_tokens`` (fewer windows than the tokens need, see
    :func:`min_windows`); ``token_outside_head`` (an id the head does not have).
    """
    vocab = weight.shape[0]
    windows = [-(-f // window_frames) for f in frames]
    status = []
    for f, w, ids in zip(frames, windows, transcripts):
        if not ids:
            status.append(EMPTY)
        elif any(t < 0 or t >= vocab for t in ids):
            status.append(OUTSIDE_HEAD)
        elif w < min_windows(ids):
            status.append(TOO_MANY_TOKENS)
        else:
            status.append(OK)
    todo = [b for b, s in enumerate(status) if s == OK]
    labels = [[blank, *transcripts[b]] if status[b] == OK else [] for b in range(len(frames))]
    scores = label_scores(pooled, weight, bias, windows, labels)
    paths = viterbi([scores[b] for b in todo], [np.asarray(transcripts[b]) for b in todo])
    spans = {b: token_spans(p, len(transcripts[b])) for b, p in zip(todo, paths)}

    # Log posteriors at every window the path gives to a token, one chunked pass for the pack.
    starts = np.concatenate([[0], np.cumsum(windows)])
    rows, picks, owners = [], [], []
    for b, path in zip(todo, paths):
        on = np.nonzero(path % 2 == 1)[0]
        rows.append(starts[b] + on)
        picks.append(np.asarray(transcripts[b])[path[on] // 2])
        owners.append(path[on] // 2)
    logpost = np.zeros(0, dtype=np.float32)
    if rows:
        r = torch.from_numpy(np.concatenate(rows)).to(pooled.device)
        k = torch.from_numpy(np.concatenate(picks)).to(pooled.device)
        logpost = head_log_posteriors(pooled[r], weight, bias, k).cpu().numpy().astype(np.float64)
    out, at, sums = [], 0, {}
    for b, own in zip(todo, owners):
        sums[b] = np.bincount(own, weights=logpost[at:at + own.size], minlength=len(transcripts[b]))
        at += own.size
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    for b in range(len(frames)):
        if status[b] == OK:
            first, last = spans[b]
            out.append(TokenAlignment(OK, first, last, sums[b], frames[b], window_frames))
        else:
            out.append(TokenAlignment(status[b], empty_i, empty_i, empty_f, frames[b], window_frames))
    return out


def words(alignment: TokenAlignment, pieces: list[bytes], duration_s: float | None = None) -> list[Word] | None:
    """Words of one aligned utterance, in seconds of the utterance.

    ``pieces[i]``: the UTF-8 bytes token ``i`` contributes to the decoded text (``b""`` for special
    tokens; see :meth:`model.text.TextDecoder.token_bytes`). The bytes are decoded in order
    (invalid sequences become U+FFFD, as the tokenizer's decoder does), each character belongs to
    the token that completes it, and words are the whitespace-separated runs of characters: so
    ``" ".join(w.word for w in words)`` is the decoded text with its whitespace normalised. A word
    spans its tokens' times; ``duration_s`` clips times to the audio (the last window may reach past
    it). ``None`` unless ``alignment.status == "ok"``.
    """
    if alignment.status != OK:
        return None
    start, end = alignment.token_times()
    if duration_s is not None:
        start, end = np.minimum(start, duration_s), np.minimum(end, duration_s)
    counts = alignment.last - alignment.first + 1
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out: list[Word] = []
    current: list[str] = []
    tokens: set[int] = set()

    def close() -> None:
        if current:
            idx = sorted(tokens)
            conf = float(np.exp(alignment.logpost_sum[idx].sum() / counts[idx].sum()))
            out.append(Word("".join(current), float(start[idx].min()), float(end[idx].max()), conf))
        current.clear()
        tokens.clear()

    for i, piece in enumerate(pieces):
        text = decoder.decode(piece, final=i == len(pieces) - 1)
        for ch in text:
            if ch.isspace():
                close()
            else:
                current.append(ch)
                tokens.add(i)
    close()
    return out
