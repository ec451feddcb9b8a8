"""The pseudo-label quality rules as pure functions, without Ray: language from real text in the
model's five languages and two it does not speak, loop and rate features on both sides of each
threshold, the batch API on Arrow and pandas, the exact per-language quantile against numpy over
many blocks, word times carried into the kept layouts, the flags, and the console summary."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from jobs.pseudo_label import build_parser, filters_from_args, format_summary
from pipeline.config import ConfigError
from pipeline.pseudo_label.filters import RULES, Filters, decide
from pipeline.pseudo_label.kept_set import hf_rows, manifest_rows
from pipeline.pseudo_label.language import detect_language, language_code
from pipeline.pseudo_label.quality import (
    QUALITY_FIELDS, add_quality_columns, apply_filters, longest_repeat, quality_values, text_features,
    words_of,
)
from pipeline.pseudo_label.quantile import key_values, sortable_keys, thresholds_of_tables
from pipeline.scoring import make_normalizer

norm = make_normalizer("english")

TEXTS = {
    "en": "the committee will publish its final report on the new railway line next spring",
    "fr": "nous avons visité le musée hier après-midi et les enfants ont adoré les tableaux",
    "de": "wir haben gestern das Museum besucht und die Kinder fanden die Bilder wunderbar",
    "es": "ayer por la tarde visitamos el museo y a los niños les encantaron los cuadros",
    "pt": "ontem à tarde visitámos o museu e as crianças adoraram os quadros que lá estavam",
    "it": "ieri pomeriggio abbiamo visitato il museo e i bambini hanno adorato i quadri",
    "nl": "gisteren hebben we het museum bezocht en de kinderen vonden de schilderijen prachtig",
}


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_language_of_real_text(language):
    code, confidence = detect_language(TEXTS[language])
    assert code == language and 0.5 < confidence <= 1.0


def test_language_columns_on_arrow_and_pandas_batches():
    table = pa.table({"id": list(TEXTS), "text": list(TEXTS.values()), "duration_s": [5.0] * len(TEXTS),
                      "error": pa.array([None] * len(TEXTS), pa.string())})
    out = add_quality_columns(table)
    assert isinstance(out, pa.Table) and out.column("language").to_pylist() == list(TEXTS)
    assert out.schema.names == table.schema.names + [f.name for f in QUALITY_FIELDS]
    frame = add_quality_columns(table.to_pandas())
    assert isinstance(frame, pd.DataFrame) and list(frame["language"]) == list(TEXTS)
    assert detect_language("") == (None, None) and detect_language("123 ...") == (None, None)
    assert [language_code(x) for x in ("pt-BR", " DE ", "en_us", "", None)] == ["pt", "de", "en", None, None]


@pytest.mark.parametrize("text,repeats", [
    ("", 0), ("hello", 1), ("a b c d", 1), ("go go go", 3), ("Go, go. GO!", 3),
    ("I think so I think so I think so then", 3), ("a b a b x a b", 2),
    (" ".join(["la"] * 40), 40), (" ".join("one two three four five six seven eight nine ten "
                                        "eleven twelve thirteen fourteen fifteen sixteen".split() * 3), 3),
])
def test_longest_repeat(text, repeats):
    assert longest_repeat(words_of(text)) == repeats


def test_text_features():
    f = text_features("The cat, the CAT and the dog.")
    assert f == {"unique_word_ratio": 4 / 7, "longest_repeat": 2, "longest_word": 3, "words": 7}
    assert text_features("„Donaudampfschifffahrtsgesellschaft“!")["longest_word"] == 34
    assert text_features("")["unique_word_ratio"] is None


def row(text, duration=2.0, **kw):
    base = {"error": None, "text": text, "draft_text": text, "duration_s": duration, "confidence": 0.9,
            "reference": None}
    base.update(kw)
    base.update(quality_values(base, norm))
    return base


def reason(r, **rules):
    return decide(r, Filters(**rules), norm)[1]


def test_repeat_ratio_on_both_sides():
    seven_of_ten = row("a b c d e f g a b c")        # unique 7/10: repeat ratio exactly 0.3
    assert seven_of_ten["unique_word_ratio"] == 0.7
    assert reason(seven_of_ten, max_repeat_ratio=0.3) is None
    assert reason(seven_of_ten, max_repeat_ratio=0.29) == "repeat_ratio"
    assert reason(row("a b c d e f a b c d"), max_repeat_ratio=0.3) == "repeat_ratio"   # 0.4
    # SDP Granary's default: unique/words <= 0.4 is a hallucination; 0.5 is not
    assert reason(row("yes yes yes no no"), max_repeat_ratio=0.6) is None             # 2/5 = 0.4
    assert reason(row("yes yes yes no no no"), max_repeat_ratio=0.6) == "repeat_ratio"  # 2/6
    assert reason(row("yes yes yes yes yes"), max_repeat_ratio=0.6) == "repeat_ratio"  # 1/5


def test_ngram_repeats_on_both_sides():
    loop = row("so we went so we went so we went home")
    assert loop["longest_repeat"] == 3
    assert reason(loop, max_ngram_repeats=3) is None
    assert reason(loop, max_ngram_repeats=2) == "ngram_repeats"


def test_long_word_bounds_per_language():
    en = row("a " + "x" * 26 + " word here in the text of english", language="en")
    assert en["longest_word"] == 26
    assert reason(en, max_word_length=26) is None
    assert reason(en, max_word_length=25) == "long_word"
    de = row("die Haftpflichtversicherungsgesellschaften haben heute die Beiträge erhöht")
    assert de["language"] == "de" and de["longest_word"] == 38
    assert Filters(max_word_length=25).word_length_bound("de") == 40
    assert reason(de, max_word_length=25) is None                        # compound: 1.6 x 25
    assert reason(de, max_word_length=23) == "long_word"                 # 37 < 38
    assert reason(de, max_word_length=25, max_word_length_by_language=(("de", 37),)) == "long_word"
    assert reason(de, max_word_length_by_language=(("de", 38),)) is None


def test_char_and_word_rates_on_both_sides():
    r = row("ten chars!" * 2, duration=2.0)        # 20 characters, 3 words ("chars!ten" is one)
    assert (r["chars_per_second"], r["words_per_second"]) == (10.0, 1.5)
    assert reason(r, chars_per_second=(10.0, 10.0)) is None
    assert reason(r, chars_per_second=(10.5, None)) == "char_rate"
    assert reason(r, chars_per_second=(None, 9.9)) == "char_rate"
    assert reason(r, words_per_second=(1.5, 1.5)) is None
    assert reason(r, words_per_second=(1.6, None)) == "word_rate"
    assert reason(r, words_per_second=(None, 1.4)) == "word_rate"


def test_language_rules():
    de = row(TEXTS["de"])
    assert reason(de, languages=("en", "de")) is None
    assert reason(de, languages=("en", "fr")) == "language"
    assert reason(de, expected_language="de") is None
    assert reason(de, expected_language="en") == "language_mismatch"
    # the row's own expected language wins; an empty one falls back to the run's
    assert reason({**de, "lang": "de-AT"}, expected_language="en", expected_language_column="lang") is None
    assert reason({**de, "lang": None}, expected_language="en",
                  expected_language_column="lang") == "language_mismatch"
    assert reason(row(""), languages=("en",)) == "empty_text"           # empty text first


def test_apply_filters_batches_name_every_rule():
    texts = [TEXTS["en"], TEXTS["it"], "go go go go go go", TEXTS["en"], None]
    frame = pd.DataFrame({"id": list("abcde"), "text": texts, "draft_text": texts,
                          "duration_s": [5.0, 5.0, 5.0, 0.5, None],
                          "confidence": [0.9, 0.9, 0.9, 0.9, None], "country": ["x"] * 5,
                          "error": [None, None, None, None, "undecodable audio"]})
    rules = Filters(languages=("en", "it"), max_ngram_repeats=4, chars_per_second=(2.0, 40.0))
    out = apply_filters(frame, rules)
    assert isinstance(out, pd.DataFrame) and list(out["country"]) == ["x"] * 5
    assert [x if isinstance(x, str) else None for x in out["reject_reason"]] == \
        [None, None, "language", "char_rate", "error"]
    arrow = apply_filters(pa.Table.from_pandas(frame), Filters(expected_language="it"))
    assert arrow.column("keep").to_pylist() == [False, True, False, False, False]
    assert set(arrow.column("reject_reason").to_pylist()) <= set(RULES) | {None}
    with pytest.raises(ValueError, match="expected_language_column 'lang' is not a column"):
        apply_filters(frame, Filters(expected_language_column="lang"))


def test_sortable_keys_order_and_invert():
    values = np.float32([-2.5, -0.0, 0.0, 1e-30, 0.25, 0.5, 1.0, 3e38])
    keys = sortable_keys(values)
    assert np.all(np.diff(keys.astype(np.int64)) >= 0) and np.array_equal(key_values(keys), values)


def blocks_of(values, languages, keep, size):
    table = pa.table({"keep": keep, "language": languages, "confidence": pa.array(values, pa.float32())})
    return [table.slice(i, size) for i in range(0, len(table), size)]


@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.9, 0.999, 1.0])
def test_quantile_equals_numpy_over_many_blocks(q):
    rng = np.random.default_rng(7)
    n = 5000
    values = np.concatenate([rng.beta(8, 2, n - 500), np.full(500, 0.75)]).astype(np.float32)  # ties
    languages = rng.choice(["en", "de", "fr", "pt", "es"], n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    languages[:1] = "it"                                        # a language with one label
    keep = rng.random(n) > 0.15
    keep[0] = True
    got = thresholds_of_tables(blocks_of(values, languages, keep, 173), q)   # 29 blocks
    assert sorted(got) == ["de", "en", "es", "fr", "it", "pt"]
    for lang, threshold in got.items():
        population = values[(languages == lang) & keep].astype(np.float64)
        assert threshold == np.quantile(population, q)          # bit for bit: numpy's "linear"
    # the cut drops exactly the kept labels below their language's threshold
    table = pa.concat_tables(blocks_of(values, languages, keep, n))
    below = sum(int(np.sum(values[(languages == lang) & keep] < t)) for lang, t in got.items())
    frame = pa.table({"text": ["word"] * n, "draft_text": ["word"] * n, "duration_s": [1.0] * n,
                      "error": pa.array([None] * n, pa.string()), "confidence": table["confidence"],
                      **{f.name: pa.nulls(n, f.type) for f in QUALITY_FIELDS}})
    frame = frame.set_column(frame.schema.get_field_index("language"), "language", table["language"])
    cut = apply_filters(frame.filter(pa.array(keep)), Filters(drop_lowest_confidence=q),
                        confidence_thresholds=got)
    assert cut.column("reject_reason").to_pylist().count("lowest_confidence") == below


def test_quantile_ignores_rejected_rows_and_empty_input():
    blocks = blocks_of([0.1, 0.9, 0.5], ["en", "en", "en"], [False, True, True], 1)
    assert thresholds_of_tables(blocks, 0.5) == {"en": np.quantile(np.float32([0.9, 0.5]).astype(float), 0.5)}
    assert thresholds_of_tables(blocks_of([0.3], ["en"], [False], 1), 0.1) == {}


WORDS = pa.list_(pa.struct([("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                            ("confidence", pa.float32())]))


def scored_table(with_words: bool) -> pa.Table:
    columns = {
        "id": ["span", "whole", "cut"], "source": ["s"] * 3, "duration_s": [2.0, 1.0, 1.0],
        "text": ["hallo welt", "hello", "x"], "draft_text": ["hallo welt", "hello", "x"],
        "token_ids": pa.array([[1, 2], [3], [4]], pa.list_(pa.int32())),
        "confidence": pa.array([0.9, 0.8, 0.1], pa.float32()), "model": ["m"] * 3,
        "start_s": pa.array([10.0, None, None], pa.float64()),
        "draft_disagreement": pa.array([0.0] * 3, pa.float32()), "language": ["de", "en", "en"],
        "language_confidence": pa.array([0.99, 0.5, 0.2], pa.float32()),
        "keep": [True, True, False], "kept_audio": ["kept_audio/a/span.flac", "kept_audio/b/whole.flac", None],
    }
    if with_words:
        columns["words"] = pa.array([
            [{"word": "hallo", "start_s": 10.24, "end_s": 10.8, "confidence": 0.5},
             {"word": "welt", "start_s": 11.12, "end_s": 11.6, "confidence": 0.25}],
            None, [{"word": "x", "start_s": 0.0, "end_s": 0.08, "confidence": 1.0}]], WORDS)
    return pa.table(columns)


def test_words_reach_the_nemo_manifest_and_hf_parquet_in_clip_time(tmp_path):
    from pipeline.storage import Storage

    for name in ("kept_audio/a/span.flac", "kept_audio/b/whole.flac"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"fLaC" + name.encode())
    manifest = manifest_rows(scored_table(True), base_uri="/data/out")
    lines = [json.loads(x) for x in manifest.to_pandas().to_json(orient="records", lines=True)
             .splitlines()]                                 # as Ray's JSON writer writes them
    assert [line["id"] for line in lines] == ["span", "whole"]
    assert [line["lang"] for line in lines] == ["de", "en"]
    span = lines[0]["words"]
    assert [w["word"] for w in span] == ["hallo", "welt"]
    assert [(w["start"], w["end"]) for w in span] == [pytest.approx((0.24, 0.8)), pytest.approx((1.12, 1.6))]
    assert lines[1]["words"] is None
    hf = hf_rows(scored_table(True), storage=Storage(), root=str(tmp_path)).to_pylist()
    assert hf[0]["words"][1]["start_s"] == pytest.approx(1.12) and hf[0]["words"][1]["word"] == "welt"
    assert hf[0]["language"] == "de" and hf[0]["audio"]["bytes"] == b"fLaCkept_audio/a/span.flac"
    # without a words column (today's transcripts) neither layout has one
    assert "words" not in manifest_rows(scored_table(False), base_uri="/x").column_names
    assert "words" not in hf_rows(scored_table(False), storage=Storage(), root=str(tmp_path)).column_names


def args(*extra):
    return build_parser().parse_args(["--input", "x", "--output", "y", *extra])


def test_flags_build_the_rules():
    f = filters_from_args(args("--languages", "EN,de,en", "--expected-language", "pt-BR",
                               "--max-repeat-ratio", "0.6", "--max-ngram-repeats", "4",
                               "--max-word-length", "25,de=45", "--chars-per-second", "4,25",
                               "--words-per-second", ",5", "--drop-lowest-confidence", "0.1"))
    assert f == Filters(languages=("en", "de"), expected_language="pt", max_repeat_ratio=0.6,
                        max_ngram_repeats=4, max_word_length=25, max_word_length_by_language=(("de", 45),),
                        chars_per_second=(4.0, 25.0), words_per_second=(None, 5.0),
                        drop_lowest_confidence=0.1)
    assert json.loads(json.dumps(f.as_dict()))["max_word_length_by_language"] == {"de": 45}


@pytest.mark.parametrize("flags,message", [
    (["--languages", "en,xx"], "--languages 'en,xx': use ISO 639-1 codes such as en,de,fr (unknown: xx)"),
    (["--chars-per-second", "25"], "--chars-per-second '25': use MIN,MAX"),
    (["--words-per-second", "5,2"], "MIN and MAX must be >= 0 and MIN <= MAX"),
    (["--max-word-length", "long"], "--max-word-length 'long': use N or N,LANG=M"),
    (["--drop-lowest-confidence", "10"], "--drop-lowest-confidence must be a fraction between 0 and 1"),
    (["--max-repeat-ratio", "1.5"], "--max-repeat-ratio must be between 0 and 1"),
])
def test_flag_mistakes_are_one_line_errors(flags, message):
    with pytest.raises(ConfigError, match=None) as e:
        filters_from_args(args(*flags))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_console_lists_only_layouts_that_were_written():
    summary = {"rows": 3, "kept": 0, "kept_hours": 0.0, "layouts": {},
               "rejected_by": {"language": {"rows": 3, "hours": 0.001}},
               "by_language": {"en": {"rows": 3, "kept": 0, "kept_hours": 0.0}}}
    text = format_summary(summary, "/o")
    assert "kept/" not in text and "kept_manifest" not in text and "kept_wds" not in text
    assert "kept set        none written: no label passed the filters" in text
    assert "language en       kept 0 of 3" in text
