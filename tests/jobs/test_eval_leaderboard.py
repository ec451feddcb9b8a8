"""The shipped leaderboard dataset file run offline on a local copy laid out like the hub."""

import json
import shutil
import struct
import zlib

import pyarrow as pa
import pyarrow.csv as pacsv

from jobs.evaluate import main
from pipeline.evaluation.specs import load_dataset_file
from tests.jobs.eval_data import AUDIO, HYPOTHESES, MODEL_ARGS, expected_wer_percent, write_hf_parquet

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


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return struct.unpack(">II", data[16:24])


def test_shipped_file_names_the_english_board():
    specs = {s.name: s for s in load_dataset_file("leaderboard")}
    assert sorted(specs) == sorted([*SETS, "earnings22_cleaned_aa_chunked"])
    assert specs["librispeech_test.other"].uri == f"hf://datasets/{BOARD}/librispeech/test.other-*.parquet"
    assert (specs["voxpopuli_cleaned_aa"].config, specs["voxpopuli_cleaned_aa"].split) == ("voxpopuli_cleaned_aa", "test")
    earnings = specs["earnings22_cleaned_aa_chunked"]
    assert earnings.chunked and earnings.parents_uri == f"hf://datasets/{PARENTS}/metadata.csv"


def test_whole_board_offline(ray_session, tmp_path):
    root = tmp_path / "hub"
    build_local_board(root)
    out = tmp_path / "board"
    assert main(["--datasets", "leaderboard", "--datasets-root", str(root), "--output", str(out), *MODEL_ARGS]) == 0
    report = json.loads((out / "report.json").read_text())
    want = {name: expected_wer_percent([(ref, HYPOTHESES[uid]) for uid, ref in rows])
            for name, (_, _, rows) in SETS.items()}
    want["earnings22_cleaned_aa_chunked"] = expected_wer_percent(
        [("Near a pear in the village road.", f"{HYPOTHESES['a02'].strip()} {HYPOTHESES['a04'].strip()}")])
    got = {name: d["wer_percent"] for name, d in report["datasets"].items()}
    assert got == want
    assert report["mean_wer_percent"] == sum(want.values()) / len(want)
    assert report["failed_datasets"] == [] and report["normalizer"] == "leaderboard"
    assert report["rtfx"] > 0 and report["rtfx_job"] > 0
    md = (out / "report.md").read_text()
    assert "| model | Average WER ⬇️ | RTFx ⬆️ | ami_cleaned | earnings22_cleaned_aa_chunked |" in md
    assert f"{report['mean_wer_percent']:.2f}" in md
    width, height = png_size((out / "report.png").read_bytes())
    assert width >= 600 and height >= 400
