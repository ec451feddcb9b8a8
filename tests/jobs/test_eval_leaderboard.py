"""The shipped leaderboard dataset files, all three tracks in one job, run offline on a local copy
laid out like the hub: the English short-form board, two multilingual configs (de, fr) and
two long-form sets (two recordings of about two minutes, one CORAAL subset). The sets of the
shipped files that the copy lacks fail as unreadable, which the report names."""

import io
import json
import shutil
import struct
import zlib
from difflib import SequenceMatcher

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from kaldialign import batch_error_rate

from jobs.evaluate import main
from pipeline import make_normalizer
from pipeline.evaluation.specs import load_dataset_file
from tests.jobs.eval_data import AUDIO, HUB_HYPOTHESES, MODEL_ARGS, expected_wer_percent, write_hf_parquet

# A shipped track runs the hub checkpoint's numerics unless told otherwise: these are the tiny model's
# transcripts under them (tests/fixtures/granite-nar-tiny-hub), and the figures below hold only if
# that profile ran.
HYPOTHESES = HUB_HYPOTHESES

BOARD = "hf-audio/open-asr-leaderboard"
# dataset name -> (shard path under the root, text column, [(utterance, reference)])
SETS = {
    "ami_cleaned": (f"{BOARD}/ami_cleaned/test-00000-of-00001.parquet", "text", [("a02", "Nearapher.")]),
    "gigaspeech_cleaned": (f"{BOARD}/gigaspeech_cleaned/test-00000-of-00001.parquet", "text",
                           [("a03_twoblocks", "while ilil last")]),
    "librispeech_test.clean": (f"{BOARD}/librispeech/test.clean-00000-of-00001.parquet", "text",
                               [("a04", "VILLAGE RIVER IN ROAD")]),
    "librispeech_test.other": (f"{BOARD}/librispeech/test.other-00000-of-00001.parquet", "text",
                               [("a02", "NEAR A PAPER")]),
    "spgispeech": (f"{BOARD}/spgispeech/test-00000-of-00001.parquet", "transcript",
                   [("a04", "illage river, in L, x-road.")]),
    "voxpopuli_cleaned_aa": (f"{BOARD}/voxpopuli_cleaned_aa/test-00000-of-00001.parquet", "normalized_text",
                             [("a03_twoblocks", "while i will last")]),
}
EARNINGS = "ArtificialAnalysis/Earnings22-Cleaned-AA-chunked/test"
PARENTS = "ArtificialAnalysis/Earnings22-Cleaned-AA/test"
ML = "hf-audio/open-asr-leaderboard-multilingual-datasets"
# config -> (language, [(utterance, reference)]): numbers, diacritics, compounds; "[bruit]" is kept by
# the multilingual rule (raw reference not empty) although it normalises to nothing.
ML_SETS = {
    # Under hub numerics the tiny model hears a04 as "illage*river inroad sax looked waa", a02 as
    # "apher? it" and a03 as "ileaYroadastillage": each reference below splits those words
    # differently (compound pairing), and adds a number (spelled out in the set's language) and
    # words with diacritics.
    "fleurs_de": ("de", [("a04", "Illage River in Road Sax looked 21."), ("a02", "Apher, Größe")]),
    "mcv_fr": ("fr", [("a03_twoblocks", "Ilea Y road ast illage."), ("a02", "[bruit]"),
                      ("a04", "Illage river, inroad sax : 80 élèves")]),
}
# Spanish and Portuguese sets are scored the same way in tests/unit/test_eval_tracks.py (without a
# job run each: every set costs a Ray pipeline of its own, and the suite's time is counted).
# Worked out by hand from those references and hypotheses, as the leaderboard scores them:
# de: "in road" / "inroad" pair to "inroad"; "einundzwanzig" / "waa" and "größe" / "it" are
#     substitutions: 2 / (6 + 2).
# fr: "ilea y road ast illage" / "ileayroadastillage" pair (0 / 1); "[bruit]" normalises to nothing
#     but is scored, "apher it" are 2 insertions (0 words); "quatre-vingts élèves" / "looked waa" are
#     2 substitutions (2 / 6): 4 / 7.
ML_WER = {"fleurs_de": 25.0, "mcv_fr": 57.14}
LONGFORM = {  # set -> (shard path, [(recording id, seconds, reference)])
    "earnings21": ("hf-audio/asr-leaderboard-longform/earnings21/test-00000-of-00001.parquet",
                   [("4320211", 100.0, "Good morning. Revenue grew 12% to $4.2 million in Q3, "
                                       "and the village road project is on track."),
                    ("4341191", 125.0, "Thank you, operator. We expect twenty five percent growth next year.")]),
    "coraal_ATL": ("bezzam/coraal/ATL/test-00000-of-00001.parquet", [("ATL_se0_ag1_m_01", 4.93, "other village")]),
}
REVISION = "99a4df9007ac5682f9daa093fb7008ff606e9a5d"


def build_local_board(root):
    for shard, column, rows in SETS.values():
        write_hf_parquet(root / shard, rows, text_column=column)
    (root / EARNINGS / "audio").mkdir(parents=True)
    for file, uid in (("4420696-0.flac", "a02"), ("4420696-1.flac", "a04")):
        shutil.copy(AUDIO / f"{uid}.flac", root / EARNINGS / "audio" / file)
    pacsv.write_csv(pa.table({"file_name": ["4420696-1.flac", "4420696-0.flac"], "parent_id": ["4420696"] * 2,
                              "chunk_index": [1, 0]}), root / EARNINGS / "metadata.csv")
    (root / PARENTS).mkdir(parents=True)
    pacsv.write_csv(pa.table({"id": ["4420696"], "text": ["Near a pear in the village road."]}),
                    root / PARENTS / "metadata.csv")


def long_recording(seconds: float) -> bytes:
    """FLAC bytes of ``seconds`` of speech: the fixture clips in turn with 0.6 s pauses (quiet cut
    points for the segmenter), cut to length."""
    pause = np.zeros(int(0.6 * 16000), np.float32)
    clips = [sf.read(AUDIO / f"{uid}.flac", dtype="float32")[0] for uid in ("a02", "a04", "a05", "a06_long")]
    parts, total, i = [], 0, 0
    while total < seconds * 16000:
        parts += [clips[i % len(clips)], pause]
        total += len(clips[i % len(clips)]) + len(pause)
        i += 1
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(parts)[: int(seconds * 16000)], 16000, format="FLAC")
    return buf.getvalue()


def build_local_tracks(root):
    for config, (_, rows) in ML_SETS.items():
        write_hf_parquet(root / ML / config / "test-00000-of-00001.parquet", rows)
    for shard, recordings in LONGFORM.values():
        (root / shard).parent.mkdir(parents=True, exist_ok=True)
        audio = [{"bytes": long_recording(sec) if sec > 10 else (AUDIO / "a05.flac").read_bytes(),
                  "path": f"{rid}.flac"} for rid, sec, _ in recordings]
        pq.write_table(pa.table({"audio": audio, "text": [ref for *_, ref in recordings],
                                 "id": [rid for rid, *_ in recordings]}), root / shard)


def leaderboard_wer(rows: list[dict], language: str) -> float:
    """The leaderboard's multilingual scoring written out here: normalise in the language, pair
    compounds (difflib opcodes whose stretches spell the same letters), kaldialign, round."""
    norm = make_normalizer("leaderboard", language=language)
    refs, hyps = [], []
    for row in rows:
        ref, hyp = norm(row["reference"]).split(), norm(row["text"] or "").split()
        new_ref, new_hyp = [], []
        for tag, a, b, c, d in SequenceMatcher(None, ref, hyp).get_opcodes():
            if tag != "equal" and "".join(ref[a:b]) == "".join(hyp[c:d]):
                new_ref.append("".join(ref[a:b]))
                new_hyp.append("".join(hyp[c:d]))
            else:
                new_ref += ref[a:b]
                new_hyp += hyp[c:d]
        refs.append(tuple(new_ref))
        hyps.append(tuple(new_hyp))
    return round(100 * batch_error_rate(refs, hyps, merge_compounds=True)["err_rate"], 2)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return struct.unpack(">II", data[16:24])


def test_shipped_files_name_the_three_tracks():
    specs = {s.name: s for s in load_dataset_file("leaderboard")}
    assert sorted(specs) == sorted([*SETS, "earnings22_cleaned_aa_chunked"])
    assert {s.track for s in specs.values()} == {"english"} and {s.language for s in specs.values()} == {"en"}
    assert specs["librispeech_test.other"].uri == f"hf://datasets/{BOARD}/librispeech/test.other-*.parquet"
    assert (specs["voxpopuli_cleaned_aa"].config, specs["voxpopuli_cleaned_aa"].split) == ("voxpopuli_cleaned_aa", "test")
    earnings = specs["earnings22_cleaned_aa_chunked"]
    assert earnings.chunked and earnings.parents_uri == f"hf://datasets/{PARENTS}/metadata.csv"
    ml = {s.name: s for s in load_dataset_file("leaderboard-multilingual")}
    # The ten configs the leaderboard runs for Granite NAR (no Italian; no mcv_pt, no mls_de).
    assert sorted(ml) == sorted(["fleurs_de", "fleurs_fr", "fleurs_es", "fleurs_pt", "mcv_de", "mcv_es", "mcv_fr",
                                 "mls_es", "mls_fr", "mls_pt"])
    assert all(s.language == s.name.split("_")[1] and s.config == s.name and s.split == "test"
               and s.track == "multilingual" and s.uri == f"hf://datasets/{ML}/{s.name}/test-*.parquet"
               for s in ml.values())
    lf = {s.name: s for s in load_dataset_file("leaderboard-longform")}
    assert [n for n, s in lf.items() if s.group is None] == ["earnings21", "earnings22", "tedlium"]
    assert [s.config for s in lf.values() if s.group == "coraal"] == ["ATL", "DCA", "DCB", "DTA", "LES", "PRV",
                                                                       "ROC", "VLD"]
    assert lf["tedlium"].uri == "hf://datasets/distil-whisper/tedlium-long-form/data/test-*.parquet"
    assert lf["coraal_ROC"].uri == "hf://datasets/bezzam/coraal/ROC/test-*.parquet"


def test_three_tracks_offline_in_one_job(ray_session, tmp_path, capsys):
    root = tmp_path / "hub"
    build_local_board(root)
    build_local_tracks(root)
    out = tmp_path / "board"
    code = main(["--datasets", "leaderboard,leaderboard-multilingual,leaderboard-longform",
                 "--datasets-root", str(root), "--output", str(out), *MODEL_ARGS])
    report = json.loads((out / "report.json").read_text())
    data = report["datasets"]
    # The sets the copy lacks are named, and make the job exit 1.
    missing = [n for n in ("mcv_de", "mls_fr", "fleurs_fr", "mcv_es", "fleurs_es", "mls_es", "fleurs_pt",
                           "mls_pt", "earnings22",
                           "tedlium", "coraal_DCA", "coraal_DCB", "coraal_DTA", "coraal_LES", "coraal_PRV",
                           "coraal_ROC", "coraal_VLD")]
    assert code == 1 and sorted(report["failed_datasets"]) == sorted(missing)
    console = capsys.readouterr()
    assert console.err.strip().splitlines()[-1].startswith(f"error: dataset {report['failed_datasets'][0]}:")
    # Two speeds on the console, never both called plain "RTFx".
    speeds = [line for line in console.out.splitlines() if "RTFx" in line]
    assert speeds and all(line.count("RTFx") == line.count("leaderboard RTFx") + line.count("job RTFx")
                          for line in speeds)
    assert any("leaderboard RTFx" in line and "job RTFx" in line for line in speeds)
    # The leaderboard's pinned revision and the checkpoint's own numerics, unless told otherwise.
    assert (report["revision"], report["numerics"]) == (REVISION, "hub")
    assert (report["settings"]["revision"], report["settings"]["numerics"]) == (REVISION, "hub")

    # English short-form: unchanged figures.
    want = {name: expected_wer_percent([(ref, HYPOTHESES[uid]) for uid, ref in rows])
            for name, (_, _, rows) in SETS.items()}
    want["earnings22_cleaned_aa_chunked"] = expected_wer_percent(
        [("Near a pear in the village road.", f"{HYPOTHESES['a02'].strip()} {HYPOTHESES['a04'].strip()}")])
    english = report["tracks"]["english"]
    assert english["wer_percent"] == want
    assert english["average_wer_percent"] == sum(want.values()) / len(want)
    assert all(data[n]["track"] == "english" and data[n]["normalizer"] == "leaderboard" for n in want)

    # Multilingual: each set scored by the leaderboard's method over the predictions the job wrote;
    # the score stage's per-row counts add up to the same figures (transcribe and evaluate agree).
    ml = report["tracks"]["multilingual"]
    for config, (language, _) in ML_SETS.items():
        rows = pq.read_table(out / config).to_pylist()
        got = data[config]
        assert (got["track"], got["language"], got["normalizer"]) == ("multilingual", language, f"leaderboard:{language}")
        assert got["wer_percent"] == leaderboard_wer(rows, language)
        assert sum(r["wer_errors"] for r in rows) == got["word_errors"]
        assert sum(r["wer_words"] for r in rows) == got["reference_words"]
        # The language's block names its sets the copy lacks too (no figure), and averages the one scored.
        block = ml["languages"][language]
        assert block["wer_percent"] == {n: (got["wer_percent"] if n == config else None) for n in block["datasets"]}
        assert block["average_wer_percent"] == got["wer_percent"]
    assert {c: data[c]["wer_percent"] for c in ML_SETS} == ML_WER
    # Scored with the English rules instead, German gives another number.
    de_rows = pq.read_table(out / "fleurs_de").to_pylist()
    assert expected_wer_percent([(r["reference"], r["text"]) for r in de_rows]) != ML_WER["fleurs_de"]
    # "[bruit]" is scored (its hypothesis word is an insertion), as the leaderboard's runner keeps it.
    assert (data["mcv_fr"]["utterances"], data["mcv_fr"]["dropped_unscorable"]) == (3, 0)
    assert (data["mcv_fr"]["word_errors"], data["mcv_fr"]["reference_words"], data["mcv_fr"]["insertions"]) == (4, 7, 2)
    scored = [data[c]["wer_percent"] for c in ML_SETS]
    assert ml["average_wer_percent"] == pytest.approx((25.0 + 57.14) / 2) == sum(scored) / 2
    assert sorted(ml["languages"]) == ["de", "es", "fr", "pt"]   # es, pt: named, nothing scored
    assert ml["languages"]["pt"]["average_wer_percent"] is None

    # Long-form: one row and one hypothesis per recording, segmented and joined.
    lf = report["tracks"]["longform"]
    e21 = pq.read_table(out / "earnings21").to_pylist()
    assert sorted(r["id"] for r in e21) == ["4320211", "4341191"]
    assert all(r["error"] is None and len(r["segments"]) >= 3 for r in e21)
    got = data["earnings21"]
    assert got["wer_percent"] == expected_wer_percent([(r["reference"], r["text"]) for r in e21])
    assert (lf["recordings"]["earnings21"], lf["segments"]["earnings21"]) == (2, sum(len(r["segments"]) for r in e21))
    assert lf["audio_hours"]["earnings21"] == round(225.0 / 3600, 4)
    atl = data["coraal_ATL"]["wer_percent"]
    assert atl == expected_wer_percent([("other village", HYPOTHESES["a05"])])
    assert lf["group_average_wer_percent"] == {"coraal": atl}
    assert lf["average_wer_percent"] == (got["wer_percent"] + atl) / 2
    assert lf["average_without_groups_wer_percent"] == got["wer_percent"]

    md = (out / "report.md").read_text()
    for title in ("## English short-form", "## Multilingual", "### de", "### fr", "## English long-form"):
        assert title in md
    lines = md.splitlines()
    header = next(i for i, line in enumerate(lines) if "| coraal_avg |" in line)
    assert [c.strip() for c in lines[header].strip("|").split("|")] == [
        "model", "Average", "leaderboard RTFx", "earnings21", "earnings22", "tedlium", "coraal_avg",
        "Avg (without CORAAL)"]
    longform_row = lines[header + 2]
    assert [c.strip() for c in longform_row.strip("|").split("|")][1:] == [
        f"{lf['average_wer_percent']:.2f}", f"{lf['rtfx']:.2f}", f"{got['wer_percent']:.2f}", "failed", "failed",
        f"{atl:.2f}", f"{got['wer_percent']:.2f}"]
    width, height = png_size((out / "report.png").read_bytes())
    assert width >= 600 and height >= 3 * 300
