"""Leaderboard figures as pure functions: rounding, the mean of rounded values, failed rows, chunk joins."""

import pytest

from pipeline.evaluation.metrics import (
    Scored, from_rows, join_chunks, mean_wer_percent, rtfx_of, score_units, wer_percent,
)


def unit(uid, ref, hyp, failed=False, audio=1.0, model=0.5):
    return Scored(uid, ref, "" if failed else hyp, failed, 0.0 if failed else audio, None if failed else model)


def test_wer_percent_rounds_like_the_leaderboard():
    assert wer_percent(1 / 6) == 16.67
    assert wer_percent(1 / 7) == 14.29
    assert wer_percent(0.0) == 0.0
    assert wer_percent(None) is None
    # The average is the plain mean of the rounded values, not a rounded mean of the raw ones.
    assert mean_wer_percent([16.67, 14.29]) == pytest.approx(15.48, abs=1e-12)
    assert mean_wer_percent([0.333, 0.333, 0.335]) == pytest.approx(0.3336666, abs=1e-6)
    assert mean_wer_percent([]) is None


def test_corpus_wer_pools_errors_and_counts_failed_rows_as_empty():
    units = [
        unit("a", "the cat sat on the mat", "the cat sat on the mat"),               # 0 / 6
        unit("b", "alpha beta gamma delta", "alpha beta gamma"),                   # 1 deletion / 4
        unit("c", "red green", None, failed=True),                                 # 2 deletions / 2
        unit("d", "um [noise]", "noise words"),                                    # dropped: empty reference
        unit("e", "ignore time segment in scoring", "x"),                          # dropped: the marker
        unit("f", "white paper", "whitepaper"),                                    # compound: 0 / 2
    ]
    s = score_units(units, "leaderboard")
    assert (s["word_errors"], s["reference_words"]) == (3, 14)
    assert (s["deletions"], s["insertions"], s["substitutions"]) == (3, 0, 0)
    assert s["wer"] == pytest.approx(3 / 14)
    assert s["wer_percent"] == 21.43
    assert (s["utterances"], s["succeeded"], s["failed"], s["dropped_unscorable"]) == (4, 3, 1, 2)
    assert s["audio_seconds"] == pytest.approx(3.0)           # failed rows carry no audio


def test_a_dataset_without_a_successful_row_has_no_wer():
    s = score_units([unit("a", "red", None, failed=True), unit("b", "green", None, failed=True)], "leaderboard")
    assert s["wer"] is None and s["wer_percent"] is None
    assert (s["failed"], s["succeeded"], s["reference_words"], s["word_errors"]) == (2, 0, 2, 2)


def test_rtfx_is_audio_over_feature_model_and_decoding_time():
    rows = [
        {"id": "a", "text": "x", "reference": "x", "error": None, "duration_s": 6.0,
         "features_seconds": 0.25, "infer_seconds": 0.75},
        {"id": "b", "text": "y", "reference": "y", "error": None, "duration_s": 3.0,
         "features_seconds": 0.5, "infer_seconds": 0.5},
        {"id": "c", "text": None, "reference": "z", "error": "undecodable audio", "duration_s": None,
         "features_seconds": None, "infer_seconds": None},
    ]
    assert rtfx_of(from_rows(rows)) == {"model_seconds": 2.0, "rtfx": 4.5}


def test_three_chunks_joined_in_order_and_scored_against_the_parent():
    # Chunk rows come back in any order; one chunk is empty and one failed.
    rows = [
        {"id": "audio/c2.wav", "text": "world", "reference": None, "error": None, "duration_s": 1.0},
        {"id": "audio/c0.wav", "text": "hello", "reference": None, "error": None, "duration_s": 2.0},
        {"id": "audio/c1.wav", "text": "  ", "reference": None, "error": None, "duration_s": 0.5},
        {"id": "audio/d0.wav", "text": None, "reference": None, "error": "undecodable audio", "duration_s": None},
    ]
    chunks = [{"file": "audio/c0.wav", "parent": "0001", "index": 0},
              {"file": "audio/c1.wav", "parent": "0001", "index": 1},
              {"file": "audio/c2.wav", "parent": "0001", "index": 2},
              {"file": "audio/d0.wav", "parent": "0002", "index": 0}]
    refs = {"0001": "Hello world.", "0002": "Only failed chunks here"}
    units, failed_chunks = join_chunks(rows, chunks, refs)
    assert [(u.id, u.hypothesis, u.reference, u.failed) for u in units] == [
        ("0001", "hello world", "Hello world.", False),
        ("0002", "", "Only failed chunks here", True)]
    assert units[0].audio_seconds == pytest.approx(3.5) and failed_chunks == 1
    s = score_units(units[:1], "leaderboard")
    assert (s["word_errors"], s["reference_words"], s["wer_percent"]) == (0, 2, 0.0)
    s = score_units(units, "leaderboard")
    assert (s["word_errors"], s["reference_words"], s["wer_percent"], s["failed"]) == (4, 6, 66.67, 1)
