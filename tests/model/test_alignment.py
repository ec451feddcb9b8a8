"""CTC forced alignment to the BPE head (model/alignment.py): the optimum, exact times, words."""

import numpy as np
import pytest
import torch

from model.alignment import (
    EMPTY, OK, OUTSIDE_HEAD, TOO_MANY_TOKENS, TokenAlignment, align_pack, label_scores, min_windows,
    viterbi, words,
)


def all_paths(T: int, targets: list[int]):
    """Every valid CTC path of ``targets`` over ``T`` windows, as (first, last) window runs per
    token (blanks everywhere else): each valid path is exactly one such run layout."""
    n = len(targets)

    def place(i, earliest):
        if i == n:
            yield []
            return
        if i > 0 and targets[i] == targets[i - 1]:
            earliest += 1  # equal neighbours need a blank between them
        # leave room for the tokens after this one
        room = min_windows(targets[i + 1:]) + (1 if i + 1 < n and targets[i + 1] == targets[i] else 0)
        for a in range(earliest, T - room):
            for b in range(a, T - room):
                for rest in place(i + 1, b + 1):
                    yield [(a, b), *rest]

    yield from place(0, 0)


def path_score(runs, scores: np.ndarray) -> float:
    """Score of the path with these runs: token columns on the runs, blank (column 0) elsewhere."""
    state = np.zeros(scores.shape[0], dtype=int)
    for i, (a, b) in enumerate(runs):
        state[a:b + 1] = i + 1
    return float(scores[np.arange(scores.shape[0]), state].sum())


def brute_force(scores: np.ndarray, targets: list[int]):
    best, best_runs = -np.inf, None
    for runs in all_paths(scores.shape[0], targets):
        s = path_score(runs, scores)
        if s > best:
            best, best_runs = s, runs
    return best, best_runs


def runs_of(path: np.ndarray, n: int):
    return [(int(np.nonzero(path == 2 * i + 1)[0][0]), int(np.nonzero(path == 2 * i + 1)[0][-1])) for i in range(n)]


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_viterbi_equals_the_brute_force_optimum_on_random_inputs(compiled):
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(120):
        n = int(rng.integers(1, 5))
        targets = [int(x) for x in rng.integers(1, 3, size=n)]  # ids 1..2: many equal neighbours
        T = int(rng.integers(max(1, n - 1), 9))
        cases.append((rng.normal(size=(T, n + 1)) * 3, targets))
    paths = viterbi([c[0] for c in cases], [np.array(c[1]) for c in cases], use_compiled=compiled)
    checked_feasible = 0
    for (scores, targets), path in zip(cases, paths):
        best, runs = brute_force(scores, targets)
        if runs is None:
            assert path is None and scores.shape[0] < min_windows(targets)
            continue
        checked_feasible += 1
        assert runs_of(path, len(targets)) == runs
        assert path_score(runs_of(path, len(targets)), scores) == pytest.approx(best, abs=1e-9)
        # alone, and by the other implementation: the same path
        [alone] = viterbi([scores], [np.array(targets)], use_compiled=not compiled)
        np.testing.assert_array_equal(alone, path)
    assert checked_feasible > 80


def test_per_window_constant_does_not_move_the_path():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(9, 4))
    targets = np.array([3, 5, 5])
    shifted = scores + rng.normal(size=(9, 1)) * 50
    [a], [b] = viterbi([scores], [targets]), viterbi([shifted], [targets])
    np.testing.assert_array_equal(a, b)


def one_hot_head(vocab: int):
    """A head whose logits are its input: weight = identity, no bias."""
    return torch.eye(vocab), None


def test_known_peaks_give_exact_times_and_posteriors():
    V, blank, peak = 16, 0, 10.0
    weight, bias = one_hot_head(V)
    # Utterance 1: 38 frames → 10 windows (the last covers frames 36-37). Tokens 7, 8, 8, 9:
    # 7 at window 1, 8 at windows 3-4, blank at 5, 8 at 6, 9 at window 9 (the partial one).
    peaks1 = {1: 7, 3: 8, 4: 8, 6: 8, 9: 9}
    # Utterance 2: 8 frames → 2 windows, one token 5 at window 0.
    peaks2 = {0: 5}
    rows = []
    for windows, peaks in ((10, peaks1), (2, peaks2)):
        for w in range(windows):
            row = torch.zeros(V)
            row[peaks.get(w, blank)] = peak
            rows.append(row)
    pooled = torch.stack(rows)
    [a1, a2] = align_pack(pooled, weight, bias, [38, 8], 4, blank, [[7, 8, 8, 9], [5]])
    assert a1.status == a2.status == OK
    assert a1.first.tolist() == [1, 3, 6, 9] and a1.last.tolist() == [1, 4, 6, 9]
    start, end = a1.token_times()
    np.testing.assert_allclose(start, [0.08, 0.24, 0.48, 0.72], atol=1e-12)
    np.testing.assert_allclose(end, [0.16, 0.40, 0.56, 0.76], atol=1e-12)  # 38 frames end at 0.76 s
    post = np.exp(peak) / (np.exp(peak) + V - 1)
    np.testing.assert_allclose(a1.logpost_sum, np.log(post) * np.array([1, 2, 1, 1]), atol=1e-6)
    assert a2.first.tolist() == [0] and a2.last.tolist() == [0]
    np.testing.assert_allclose(a2.token_times(), ([0.0], [0.08]), atol=1e-12)


def test_impossible_and_empty_alignments_say_so():
    V = 8
    weight, bias = one_hot_head(V)
    pooled = torch.randn(3 + 1 + 2, V)
    # 12 frames → 3 windows: [1, 1, 1] needs 5; [1, 2, 3] fits exactly; [] is empty; [9] is not in the head.
    out = align_pack(pooled[:3], weight, bias, [12], 4, 0, [[1, 1, 1]])
    assert out[0].status == TOO_MANY_TOKENS and out[0].first.size == 0
    out = align_pack(pooled, weight, bias, [12, 4, 8], 4, 0, [[1, 2, 3], [], [9]])
    assert [a.status for a in out] == [OK, EMPTY, OUTSIDE_HEAD]
    assert out[0].first.tolist() == [0, 1, 2]
    assert words(out[1], []) is None and words(out[2], [b"x"]) is None


def test_words_split_at_whitespace_and_keep_their_tokens_times():
    al = TokenAlignment(OK, np.array([0, 2, 5, 6, 9]), np.array([1, 2, 5, 7, 9]),
                        np.log(np.array([0.5 * 0.5, 0.8, 0.9, 0.6 * 0.6, 1.0])), frames=40, window_frames=4)
    # " he" "llo" " caf\xc3" "\xa9!" "" (a special token): "é" is completed by the 4th token.
    got = words(al, [b" he", b"llo", b" caf\xc3", b"\xa9!", b""])
    assert [w.word for w in got] == ["hello", "café!"]
    assert (got[0].start_s, got[0].end_s) == pytest.approx((0.0, 0.24))
    assert (got[1].start_s, got[1].end_s) == pytest.approx((0.40, 0.64))
    assert got[0].confidence == pytest.approx((0.5 * 0.5 * 0.8) ** (1 / 3))
    assert got[1].confidence == pytest.approx((0.9 * 0.6 * 0.6) ** (1 / 3))
    # A token holding a space inside splits into two words that share its times; clipping to the audio.
    al2 = TokenAlignment(OK, np.array([0, 9]), np.array([0, 9]), np.zeros(2), frames=40, window_frames=4)
    got = words(al2, [b"a b", b" c"], duration_s=0.75)
    assert [(w.word, w.start_s, w.end_s) for w in got] == [("a", 0.0, 0.08), ("b", 0.0, 0.08), ("c", 0.72, 0.75)]


def test_fixture_utterance_alignment_is_the_brute_force_optimum(native_model, features):
    """a02 (48 frames, 12 windows, 4 tokens): every valid path scored with the head's full
    log-softmax; the best one is the aligner's."""
    [result], [al] = native_model.transcribe_with_alignment([features["a02"]])
    ids = result.token_ids
    assert al.status == OK and len(ids) == 4
    head = native_model.model.out_bpe
    enc = native_model.encode([features["a02"]])
    with torch.inference_mode():
        logp = torch.log_softmax(head(enc.encoder.pooled).double(), dim=-1).numpy()  # (12, V): fine here
    scores = logp[:, [native_model.config.blank_token_id, *ids]]
    best, runs = brute_force(scores, ids)
    assert [(int(a), int(b)) for a, b in zip(al.first, al.last)] == runs
    # The posteriors are the head's own: the sum over each token's windows.
    want = [sum(logp[w, t] for w in range(a, b + 1)) for t, (a, b) in zip(ids, runs)]
    np.testing.assert_allclose(al.logpost_sum, want, atol=1e-4)
    # label_scores are the head's raw logits of the labels
    [raw] = label_scores(enc.encoder.pooled, head.weight, head.bias, [12], [[native_model.config.blank_token_id, *ids]])
    np.testing.assert_allclose(raw - raw[:, :1], scores - scores[:, :1], atol=1e-4)


def test_alignment_does_not_depend_on_the_pack(native_model, features):
    uids = sorted(features)
    together, aligned = native_model.transcribe_with_alignment([features[u] for u in uids])
    plain = native_model.transcribe([features[u] for u in uids])
    assert [r.token_ids for r in together] == [r.token_ids for r in plain]
    assert [r.confidence for r in together] == [r.confidence for r in plain]
    assert sum(a.status == OK for a in aligned) >= 4
    for uid, res, al in zip(uids, together, aligned):
        if uid not in ("a02", "a04", "a06_long"):
            continue
        [alone], [al1] = native_model.transcribe_with_alignment([features[uid]])
        assert alone.token_ids == res.token_ids and al1.status == al.status
        np.testing.assert_array_equal(al1.first, al.first)
        np.testing.assert_array_equal(al1.last, al.last)
        np.testing.assert_allclose(al1.logpost_sum, al.logpost_sum, atol=1e-4)
        assert al.frames == features[uid].shape[0]


@pytest.mark.parametrize("numerics", ["hub", "transformers"])
def test_the_profiles_frame_count_sets_the_grid(waveforms, numerics):
    """Under hub an utterance has N // 320 encoder frames, under transformers ceil((N//160+1)/2):
    the alignment's grid and its last possible time follow the frames the model ran on."""
    from model import load_model
    from tests.model.conftest import TINY

    model = load_model(TINY, device="cpu", numerics=numerics)
    wave = waveforms["a04"]
    n = wave.size
    feats = model.features(wave)
    [result], [al] = model.transcribe_with_alignment([feats])
    frames = n // 320 if numerics == "hub" else -(-(n // 160 + 1) // 2)
    assert al.frames == feats.shape[0] == frames and al.status == OK
    start, end = al.token_times()
    assert end.max() <= frames * 0.02 + 1e-12
    np.testing.assert_allclose(start / 0.08, np.round(start / 0.08), atol=1e-9)
    found = words(al, model.decoder.token_bytes(result.token_ids), duration_s=n / 16000)
    assert " ".join(w.word for w in found) == " ".join(result.text.split())
