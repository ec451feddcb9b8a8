"""The leaderboard normaliser against the leaderboard's own outputs, and the other normalisers."""

import json
from pathlib import Path

import pytest

from pipeline import make_normalizer
from pipeline.evaluation.normalizer import join_acronyms
from pipeline.scoring import is_scorable_reference, word_errors

PAIRS = Path(__file__).resolve().parents[1] / "fixtures" / "leaderboard-normalizer" / "pairs.jsonl"


def test_every_pair_matches_the_leaderboard_output():
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    assert len(pairs) == 432
    normalize = make_normalizer("leaderboard")
    wrong = [(p["text"], p["normalized"], normalize(p["text"])) for p in pairs
             if normalize(p["text"]) != p["normalized"]]
    assert wrong == []


@pytest.mark.parametrize("text,leaderboard,whisper", [
    ("John's car", "john s car", "john is car"),          # 's -> is only after pronouns
    ("it's here", "it is here", "it is here"),
    ("uhm well", "well", "uhm well"),                     # the leaderboard's longer filler list
    ("Stephen King", "steven king", "stephen king"),      # first-name table
    ("wi-fi", "wifi", "wi fi"),                           # compounds
    ("B B C", "bbc", "b b c"),                            # acronym joining
    ("OK", "okay", "ok"),                                 # corrected spelling table
    ("archaeology", "archeology", "archeology</span>"),   # Whisper's table slip, fixed
    ("kinda weird", "kinda weird", "kind of weird"),
])
def test_leaderboard_differs_from_whisper(text, leaderboard, whisper):
    assert make_normalizer("leaderboard")(text) == leaderboard
    assert make_normalizer("whisper")(text) == whisper
    assert make_normalizer("english")(text) == whisper


def test_basic_and_none():
    assert make_normalizer("basic")("Hello, World!") == "hello world "
    assert make_normalizer("none")("Hello, World!") == "Hello, World!"
    with pytest.raises(ValueError, match="unknown normalizer 'klingon'"):
        make_normalizer("klingon")


@pytest.mark.parametrize("text,joined", [
    ("b b c news", "bbc news"),
    ("a big cat", "a big cat"),          # a lone one-letter word stays
    ("i m here", "i m here"),            # a run holding 'i' needs three
    ("a b c", "abc"),
    ("5 g network", "5g network"),
    ("x y and z", "xy and z"),
])
def test_join_acronyms(text, joined):
    assert join_acronyms(text) == joined


@pytest.mark.parametrize("reference,normalizer,kept", [
    ("...", "leaderboard", False),       # normalises to empty: never one word
    ("um uh", "leaderboard", False),
    ("[noise] (laughs)", "leaderboard", False),
    ("Ignore time segment in scoring.", "leaderboard", False),
    (None, "leaderboard", False),
    ("hello", "leaderboard", True),
    ("uhm", "whisper", True),            # not a Whisper filler
    ("uh", "whisper", False),
    ("...", "basic", False),
    ("...", "none", True),
    ("   ", "none", False),
])
def test_is_scorable_reference(reference, normalizer, kept):
    assert is_scorable_reference(reference, normalizer) is kept


def test_compound_merging_costs_nothing():
    lb = make_normalizer("leaderboard")
    assert word_errors("white paper", "whitepaper", lb) == (0, 2)
    assert word_errors("whitepaper", "white paper", lb) == (0, 1)
    assert word_errors("the white paper", "a whitepaper", lb) == (1, 3)
    assert word_errors("red green blue", "", lb) == (3, 3)    # an empty hypothesis: all deletions
    assert word_errors("", "two words", lb) == (2, 0)
