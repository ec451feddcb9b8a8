"""Tracks without Ray: their averages, per-set settings, the evaluate flags that pick them, and the
report as the user sees it (console and report.md tables aligned, two RTFx figures named apart,
chart legends clear of every bar and value)."""

import pytest

from jobs.evaluate import build_parser, dataset_specs, leaderboard_model_options
from pipeline.config import ConfigError, TranscribeConfig
from pipeline.evaluation.evaluate import LONGFORM_MAX_DURATION_SECONDS, dataset_config, reference_filter
from pipeline.evaluation.report import build_chart, console_table, markdown
from pipeline.evaluation.specs import DatasetSpec
from pipeline.evaluation.tracks import summarize_tracks

LONG_NAME = "a_dataset_with_a_really_quite_long_name_for_the_columns_test"


def entry(track, wer, language="en", group=None, audio=3600.0, model=10.0, utterances=2, segments=4):
    return {"track": track, "language": language, "group": group, "wer_percent": wer, "wer": wer / 100,
            "utterances": utterances, "succeeded": utterances, "failed": 0, "dropped_unscorable": 0,
            "audio_seconds": audio, "model_seconds": model, "rtfx": round(audio / model, 2),
            "rtfx_job": 0.75, "word_errors": 3, "reference_words": 40, "segments": segments,
            "normalizer": "leaderboard"}


def report_of(datasets):
    return {"datasets": datasets, "tracks": summarize_tracks(datasets), "mean_wer_percent": 5.0,
            "rtfx": 180.1, "rtfx_job": 0.754, "model": "ibm-granite/granite-speech-4.1-2b-nar",
            "revision": "99a4df9", "numerics": "hub", "normalizer": "leaderboard",
            "audio_seconds": 7200.0, "wall_seconds": 9549.0, "failed_datasets": []}


def test_multilingual_blocks_per_language_and_the_average_over_configs():
    tracks = summarize_tracks({
        "fleurs_de": entry("multilingual", 4.0, "de"), "mcv_de": entry("multilingual", 7.0, "de"),
        "fleurs_fr": entry("multilingual", 5.5, "fr", audio=1800.0, model=30.0),
        "ls": entry("english", 2.0),
    })
    ml = tracks["multilingual"]
    assert ml["languages"]["de"]["average_wer_percent"] == 5.5            # (4 + 7) / 2
    assert ml["languages"]["fr"]["wer_percent"] == {"fleurs_fr": 5.5}
    assert ml["average_wer_percent"] == pytest.approx(16.5 / 3)           # over the configs, not the languages
    assert ml["rtfx"] == round((3600 + 3600 + 1800) / (10 + 10 + 30), 2)  # 180.0
    assert tracks["english"]["average_wer_percent"] == 2.0 and list(tracks) == ["english", "multilingual"]


def test_longform_averages_with_and_without_coraal():
    # The leaderboard's row for parakeet-tdt-0.6b-v3 in scripts/data/en_longform.csv: 9.96, 14.58, 2.77,
    # coraal_avg 15.57 -> Average 10.72, Avg (without CORAAL) 9.1033...
    coraal = [15.0, 16.14]   # mean 15.57
    datasets = {"earnings21": entry("longform", 9.96), "earnings22": entry("longform", 14.58),
                "tedlium": entry("longform", 2.77, segments=11),
                **{f"coraal_{i}": entry("longform", v, group="coraal") for i, v in enumerate(coraal)}}
    lf = summarize_tracks(datasets)["longform"]
    assert lf["group_average_wer_percent"]["coraal"] == pytest.approx(15.57)
    assert lf["average_wer_percent"] == pytest.approx(10.72)
    assert lf["average_without_groups_wer_percent"] == pytest.approx(9.103333, abs=1e-6)
    assert (lf["recordings"]["tedlium"], lf["segments"]["tedlium"], lf["audio_hours"]["tedlium"]) == (2, 11, 1.0)


def test_longform_default_admits_recordings_past_an_hour():
    base = TranscribeConfig(inputs=("x",), output="o")
    longform = DatasetSpec(name="earnings21", uri="x", track="longform")
    german = DatasetSpec(name="fleurs_de", uri="x", track="multilingual", language="de")
    assert dataset_config(base, longform, None).max_duration_seconds == LONGFORM_MAX_DURATION_SECONDS == 14400
    assert dataset_config(base, german, None).max_duration_seconds == 3600
    assert (dataset_config(base, german, None).language, dataset_config(base, longform, None).language) == ("de", "en")
    assert dataset_config(base, longform, 5400.0).max_duration_seconds == 5400   # the flag wins
    assert (reference_filter(german, "leaderboard"), reference_filter(longform, "leaderboard")) == ("none", "leaderboard")


def args_of(*argv):
    return build_parser().parse_args(["--output", "o", *argv])


def test_language_flag_and_comma_separated_tracks():
    specs = dataset_specs(args_of("--dataset", "mine=/data/de", "--language", "de", "--datasets",
                                  "leaderboard,leaderboard-multilingual"))
    assert (specs[0].name, specs[0].language, specs[0].track) == ("mine", "de", None)
    assert len(specs) == 1 + 7 + 10 and {s.track for s in specs[1:]} == {"english", "multilingual"}
    assert [s.language for s in dataset_specs(args_of("--dataset", "a=/x"))] == ["en"]
    with pytest.raises(ConfigError, match=r"^--language xx: language 'xx': num2words cannot spell numbers in it"):
        dataset_specs(args_of("--dataset", "a=/x", "--language", "xx"))
    with pytest.raises(ConfigError, match=r"^dataset a: language 'German' must be an ISO 639-1 code"):
        dataset_specs(args_of("--dataset", "a=/x", "--language", "German"))


def test_leaderboard_tracks_pin_the_revision_and_hub_numerics():
    pinned = leaderboard_model_options(args_of("--datasets", "leaderboard-longform"))
    assert (pinned["revision"], pinned["numerics"]) == ("99a4df9007ac5682f9daa093fb7008ff606e9a5d", "hub")
    told = leaderboard_model_options(args_of("--datasets", "leaderboard", "--revision", "main",
                                             "--numerics", "transformers"))
    assert (told["revision"], told["numerics"]) == ("main", "transformers")
    own = leaderboard_model_options(args_of("--dataset", "a=/x"))
    assert (own["revision"], own["numerics"]) == (None, None)


def column_span(line: str, label: str) -> tuple[int, int]:
    start = line.index(label)
    return start, start + len(label)


def test_console_names_both_speeds_and_stays_aligned_with_a_long_name():
    report = report_of({"ls": entry("english", 2.0), LONG_NAME: entry("english", 12.25)})
    lines = console_table(report).splitlines()
    header = lines[0]
    # Two speeds, each under its own name; no bare "RTFx" column.
    assert header.count("RTFx") == 2 and "leaderboard RTFx" in header and "job RTFx" in header
    all_sets = next(line for line in lines if line.startswith("all sets"))
    assert all_sets.split()[-2:] == ["180.10", "0.75"]
    # Right-aligned numbers end under their header whatever the length of the first column.
    for label, values in (("WER %", ["2.00", "12.25"]), ("leaderboard RTFx", ["360.00", "360.00"]),
                          ("job RTFx", ["0.75", "0.75"])):
        _, end = column_span(header, label)
        for line, value in zip(lines[1:3], values):
            assert line[end - len(value):end] == value, (label, line)


def test_markdown_tables_are_aligned_with_a_long_name():
    report = report_of({"ls": entry("english", 2.0), LONG_NAME: entry("english", 12.25),
                        "fleurs_de": entry("multilingual", 4.0, "de")})
    md = markdown(report).splitlines()
    tables, current = [], []
    for line in md + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) == 3      # English, multilingual de, per dataset
    for table in tables:
        bars = [[i for i, ch in enumerate(line) if ch == "|"] for line in table]
        assert all(b == bars[0] for b in bars), table
    per_set = tables[-1]
    assert [c.strip() for c in per_set[0].strip("|").split("|")][8:10] == ["leaderboard RTFx", "job RTFx"]
    assert any(line.startswith(f"| {LONG_NAME} |") for line in per_set)


def test_chart_legends_never_cover_a_bar_or_its_value():
    # The last bar is the tallest: a legend in the upper right corner of the panel would sit on it.
    datasets = {f"set{i}": entry("english", v) for i, v in enumerate([3.0, 5.0, 8.0, 30.0])}
    datasets.update({"fleurs_de": entry("multilingual", 4.0, "de"), "mls_fr": entry("multilingual", 9.0, "fr")})
    fig = build_chart(report_of(datasets))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    checked = 0
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1     # on the picture
        for artist in [*ax.texts, *ax.patches]:
            assert not legend.overlaps(artist.get_window_extent(renderer)), artist
            checked += 1
    assert checked == 2 * 6      # every bar and every value label
    texts = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    assert texts == sorted(["3.00", "5.00", "8.00", "30.00", "4.00", "9.00"])


# The tiny model's transcripts of the fixture clips (tests/fixtures/granite-nar-tiny/expected.json).
A04, A02 = "illage*river inL*xroad waroad", " nearapher?"


@pytest.mark.parametrize("language,rows,errors,words,wer", [
    # "in l" / "inl" pair to "inl"; "veintiuno años" deleted (2 of 7 words); "sí" deleted (1 of 2).
    ("es", [("Illage river in l xroad waroad, ¿21 años?", A04), ("Nearapher sí", A02)], 3, 9, 33.33),
    # "in l x road" / "inl xroad" pair to "inlxroad"; 21 is "vinte e um", three deleted words (3 of 7);
    # "são" deleted (1 of 2).
    ("pt", [("Illage river in L x road waroad 21", A04), ("São nearapher", A02)], 4, 9, 44.44),
    # "einundzwanzig" and "größe" deleted: 2 of 5 + 2.
    ("de", [("Illage River in L x road Waroad 21.", A04), ("Nearapher Größe", A02)], 2, 7, 28.57),
    # "[bruit]" normalises to nothing and is scored: "nearapher" is an insertion against 0 words.
    ("fr", [("While il il last.", " whileilillast"), ("[bruit]", A02),
            ("Illage river, inL xroad, waroad : 80 élèves", A04)], 3, 8, 37.5),
])
def test_multilingual_sets_by_hand(language, rows, errors, words, wer):
    from pipeline.evaluation.metrics import Scored, score_units

    units = [Scored(str(i), ref, hyp, False, 1.0, 0.5) for i, (ref, hyp) in enumerate(rows)]
    score = score_units(units, "leaderboard", language)
    assert (score["word_errors"], score["reference_words"], score["wer_percent"]) == (errors, words, wer)
    assert (score["utterances"], score["dropped_unscorable"]) == (len(rows), 0)
    # The same rows by the English rules: another figure (no spelled numbers, no pairing).
    assert score_units(units, "leaderboard")["wer_percent"] != wer
