"""The layouts speech teams keep corpora in (pure, no Ray): NeMo tarred datasets, gzip manifests,
lhotse manifests, HF audiofolder splits, folders that describe themselves, macOS ghost files,
tar links, per-channel rows. Each test builds its inputs and reads them through the listing and
the index functions the Ray tasks run."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.index import IndexSettings, unit_tables
from pipeline.sources.listing import list_input, plan_units
from pipeline.sources.manifest import manifest_table
from pipeline.stages.decode import BadAudio, decode
from pipeline.storage import Storage

from tests.conftest import TINY_AUDIO

TINY_MANIFEST = TINY_AUDIO.parent / "manifest.jsonl"
COLS = SourceColumns()
SETTINGS = IndexSettings(storage=Storage(), columns=COLS)


def wav_bytes(seconds: float = 1.0, channels: int = 1, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    data = np.stack([0.1 * (c + 1) * np.sin(2 * np.pi * 220 * (c + 1) * t)
                     for c in range(channels)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def jsonl(*objs) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objs).encode()


def write_tar(path, members: list[tuple[str, bytes | None, str | None, str | None]]) -> dict:
    """Members (name, data, link kind, link target); returns name → (offset, size) of files."""
    with tarfile.open(path, "w") as tar:
        for name, data, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, target
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with tarfile.open(path) as tar:
        return {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}


def index_rows(uri: str, fmt: str = "auto", columns: SourceColumns = COLS):
    listing = list_input(str(uri), fmt, Storage())
    settings = IndexSettings(storage=Storage(), columns=columns)
    rows = [row for unit in plan_units([listing]) for table in unit_tables(unit, settings)
            for row in table.to_pylist()]
    return listing, rows


# --- NeMo tarred datasets ------------------------------------------------------------------------

def nemo_tarred(tmp_path):
    """Two shards as NeMo's converter writes them: ``a.wav`` listed twice in shard 0 (the second
    row names ``a-sub1.wav``, which is not a member), a row whose member is missing, and a row
    whose shard has no tar."""
    a, b, c = wav_bytes(3.0), wav_bytes(1.0), wav_bytes(1.5)
    spans0 = write_tar(tmp_path / "audio_0.tar", [("a.wav", a, None, None), ("b.wav", b, None, None)])
    spans1 = write_tar(tmp_path / "audio_1.tar", [("c.wav", c, None, None)])
    (tmp_path / "tarred_audio_manifest.json").write_bytes(jsonl(
        {"audio_filepath": "a.wav", "offset": 0.0, "duration": 1.0, "text": "first", "shard_id": 0},
        {"audio_filepath": "a-sub1.wav", "offset": 1.5, "duration": 1.0, "text": "second", "shard_id": 0},
        {"audio_filepath": "b.wav", "duration": 1.0, "text": "bee", "shard_id": 0},
        {"audio_filepath": "c.wav", "duration": 1.5, "text": "sea", "shard_id": 1},
        {"audio_filepath": "d.wav", "duration": 1.0, "text": "dee", "shard_id": 1},
        {"audio_filepath": "e.wav", "duration": 1.0, "text": "ee", "shard_id": 7}))
    return spans0, spans1


def test_nemo_tarred_folder_reads_members_references_spans_and_sub_rows(tmp_path):
    spans0, spans1 = nemo_tarred(tmp_path)
    listing, rows = index_rows(tmp_path)
    assert listing.format == "nemo-tarred"
    t0, t1 = f"{tmp_path}/audio_0.tar", f"{tmp_path}/audio_1.tar"
    got = sorted((r["id"], r["uri"], r["source"], r["offset"], r["length"], r["reference"],
                  r["start_s"], r["end_s"]) for r in rows if r["error"] is None)
    assert got == [
        ("a-sub1@1.5-2.5", t0, f"{t0}#a.wav", *spans0["a.wav"], "second", 1.5, 2.5),
        ("a@0-1", t0, f"{t0}#a.wav", *spans0["a.wav"], "first", 0.0, 1.0),
        ("b", t0, f"{t0}#b.wav", *spans0["b.wav"], "bee", None, None),
        ("c", t1, f"{t1}#c.wav", *spans1["c.wav"], "sea", None, None)]
    errors = {r["id"]: r["error"] for r in rows if r["error"]}
    assert errors == {
        "d": "manifest row 5: member 'd' (from 'd.wav') is not in audio_1.tar",
        "e": "manifest row 6: shard_id 7 names no tar of the set (looked for audio_7.tar among "
             "the set's 2 tars)"}
    assert len(rows) == 6


def test_a_tar_of_the_set_no_row_names_is_an_error_row(tmp_path):
    nemo_tarred(tmp_path)
    write_tar(tmp_path / "audio_2.tar", [("x.wav", wav_bytes(1.0), None, None)])
    write_tar(tmp_path / "extra.tar", [("y.wav", wav_bytes(1.0), None, None)])
    _, rows = index_rows(tmp_path)
    assert len(rows) == 6 + 2            # the manifest's 6 rows, one per tar no row reaches
    errors = {r["id"]: (r["uri"], r["error"]) for r in rows if r["id"].endswith(".tar")}
    assert errors == {
        "audio_2.tar": (f"{tmp_path}/audio_2.tar", "tar shard audio_2.tar is in the set of "
                        "tarred_audio_manifest.json, but no manifest row names it (shard 2): its "
                        "members are not read"),
        "extra.tar": (f"{tmp_path}/extra.tar", "tar shard extra.tar is in the set of "
                      "tarred_audio_manifest.json, but no manifest row names it (it is not named "
                      "audio_<shard_id>.tar): its members are not read")}


def test_nemo_tarred_given_as_manifest_or_brace_pattern(tmp_path):
    nemo_tarred(tmp_path)
    for given in (tmp_path / "tarred_audio_manifest.json", f"{tmp_path}/audio_{{0..1}}.tar",
                  f"{tmp_path}/audio__OP_0..1_CL_.tar"):
        listing, rows = index_rows(given)
        assert listing.format == "nemo-tarred"
        assert sorted(r["id"] for r in rows) == ["a-sub1@1.5-2.5", "a@0-1", "b", "c", "d", "e"]
    with pytest.raises(ConfigError, match=r"audio_2.tar \(of the 3 files of the brace pattern\) "
                                          "does not exist"):
        list_input(f"{tmp_path}/audio_{{0..2}}.tar", "auto", Storage())


def test_nemo_tarred_parts_give_each_row_once(tmp_path, monkeypatch):
    import pipeline.sources.listing as listing_module

    monkeypatch.setattr(listing_module, "TARS_PER_UNIT", 1)
    nemo_tarred(tmp_path)
    listing, rows = index_rows(tmp_path)
    assert [u.part for u in plan_units([listing])] == [(0, 2), (1, 2)]
    assert sorted(r["id"] for r in rows) == ["a-sub1@1.5-2.5", "a@0-1", "b", "c", "d", "e"]


def test_nemo_tarred_tars_outside_the_manifests_folder(tmp_path):
    """NeMo's manifest_filepath and tarred_audio_filepaths apart: tars in another folder are read
    when given as a second --input or when they sit in a subfolder; a manifest whose tars are
    nowhere to be found is one error line naming its folder, never rows left unread."""
    from pipeline.sources.listing import list_inputs

    (tmp_path / "shards").mkdir()
    nemo_tarred(tmp_path / "shards")
    (tmp_path / "meta").mkdir()
    manifest = tmp_path / "meta" / "tarred_audio_manifest.json"
    (tmp_path / "shards" / "tarred_audio_manifest.json").rename(manifest)
    expected = ["a-sub1@1.5-2.5", "a@0-1", "b", "c", "d", "e"]

    def ids(inputs):
        listings = list_inputs(tuple(str(i) for i in inputs), "auto", Storage())
        rows = [r for u in plan_units(listings) for t in unit_tables(u, SETTINGS) for r in t.to_pylist()]
        return [l.format for l in listings], sorted(r["id"] for r in rows), \
            sorted(r["id"] for r in rows if r["error"] is None)

    assert ids([manifest, f"{tmp_path}/shards/audio_{{0..1}}.tar"]) == (
        ["nemo-tarred"], expected, ["a-sub1@1.5-2.5", "a@0-1", "b", "c"])
    assert ids([manifest, tmp_path / "shards"]) == (["nemo-tarred"], expected,
                                                    ["a-sub1@1.5-2.5", "a@0-1", "b", "c"])
    assert ids([manifest, tmp_path / "shards" / "audio_0.tar", tmp_path / "shards" / "audio_1.tar"]
               ) == (["nemo-tarred"], expected, ["a-sub1@1.5-2.5", "a@0-1", "b", "c"])
    (listing,) = list_inputs((str(manifest), str(tmp_path / "shards")), "auto", Storage())
    assert listing.notes[-1] == (f"--input {manifest}: its tars are --input {tmp_path}/shards "
                                 "(2 tar shards)")
    # a manifest beside the tars too: they are that manifest's set, so which manifest reads them
    # is not known: one line asking for an explicit pairing, never a manifest left unread
    (tmp_path / "shards" / "tarred_audio_manifest.json").write_bytes(manifest.read_bytes())
    for tars in (f"{tmp_path}/shards/audio_{{0..1}}.tar", tmp_path / "shards"):
        with pytest.raises(ConfigError, match=rf"^--input {manifest} is a NeMo tarred manifest "
                           rf"without tars beside it, and the tars of --input {tars} are not its "
                           rf"own \(they are the set of {tmp_path}/shards/tarred_audio_manifest"
                           r".json, which is read with them\); make the pairing explicit") as err:
            ids([manifest, tars])
        assert "\n" not in str(err.value)
    # each tar given alone is a pairing the user chose
    assert ids([manifest, tmp_path / "shards" / "audio_0.tar", tmp_path / "shards" / "audio_1.tar"]
               ) == (["nemo-tarred"], expected, ["a-sub1@1.5-2.5", "a@0-1", "b", "c"])
    (tmp_path / "shards" / "tarred_audio_manifest.json").unlink()
    with pytest.raises(ConfigError, match=rf"its folder {tmp_path}/meta holds no "
                                          r"audio_<shard_id>.tar shards; give the tars as a second"):
        list_inputs((str(manifest),), "auto", Storage())
    with pytest.raises(ConfigError, match="holds no audio_<shard_id>.tar shards"):
        list_inputs((str(manifest), str(TINY_MANIFEST)), "auto", Storage())
    # a folder whose tars sit in a subfolder of the manifest's
    (tmp_path / "shards").rename(tmp_path / "meta" / "shards")
    assert ids([tmp_path / "meta"])[1:] == (expected, ["a-sub1@1.5-2.5", "a@0-1", "b", "c"])
    # two sets in one folder and tars in neither's folder: refused, naming a tar
    (tmp_path / "meta" / "other").mkdir()
    (tmp_path / "meta" / "other" / "tarred_audio_manifest.json").write_bytes(
        manifest.read_bytes())
    with pytest.raises(ConfigError, match=r"audio_0.tar \(and 1 more\) is in no folder of the 2 "
                                          "NeMo tarred manifests"):
        ids([tmp_path / "meta"])


def test_a_lone_tarred_manifest_takes_only_the_tars_that_can_be_its_own(tmp_path):
    """A lone NeMo manifest (its tars another --input) beside a complete NeMo set in a folder and
    a WebDataset corpus: the manifest takes only its own audio_<n>.tar input; the set and the
    corpus are read as themselves (every row there); several lone manifests are refused."""
    from pipeline.sources.listing import list_inputs

    (tmp_path / "shards").mkdir()
    nemo_tarred(tmp_path / "shards")
    (tmp_path / "meta").mkdir()
    manifest = tmp_path / "meta" / "tarred_audio_manifest.json"
    (tmp_path / "shards" / "tarred_audio_manifest.json").rename(manifest)
    (tmp_path / "set").mkdir()
    nemo_tarred(tmp_path / "set")                               # a complete set: its own manifest
    (tmp_path / "wds").mkdir()
    write_tar(tmp_path / "wds" / "train-000.tar", [("k1.wav", wav_bytes(0.5), None, None),
                                                   ("k1.txt", b"one", None, None)])
    inputs = (str(manifest), str(tmp_path / "set"), str(tmp_path / "wds"),
              f"{tmp_path}/shards/audio_{{0..1}}.tar")
    listings = list_inputs(inputs, "auto", Storage())
    assert [(l.input, l.format) for l in listings] == [
        (str(manifest), "nemo-tarred"), (str(tmp_path / "set"), "nemo-tarred"),
        (str(tmp_path / "wds"), "webdataset")]
    assert listings[0].files == (str(manifest), f"{tmp_path}/shards/audio_0.tar",
                                 f"{tmp_path}/shards/audio_1.tar")
    rows = [r for u in plan_units(listings) for t in unit_tables(u, SETTINGS) for r in t.to_pylist()]
    by_source = sorted((r["id"], r["uri"].rsplit("/", 2)[-2], r["reference"]) for r in rows
                       if r["error"] is None)
    # several inputs: the NeMo ids start with the manifest's folder (README, "Ids")
    assert by_source == [("k1", "wds", "one")] + [
        (f"{prefix}/{i}", folder, ref) for prefix, folder in (("meta", "shards"), ("set", "set"))
        for i, ref in (("a-sub1@1.5-2.5", "second"), ("a@0-1", "first"), ("b", "bee"),
                       ("c", "sea"))]
    # the tars given with no lone manifest's names: refused, not dropped
    with pytest.raises(ConfigError, match=r"train-000.tar is not named audio_<shard_id>.tar"):
        list_inputs((str(manifest), str(tmp_path / "wds")), "auto", Storage())
    # two lone manifests: which tars are whose is not known
    (tmp_path / "meta2").mkdir()
    (tmp_path / "meta2" / "tarred_audio_manifest.json").write_bytes(manifest.read_bytes())
    with pytest.raises(ConfigError, match=r"which of the tars of --input .*audio_\{0..1\}.tar "
                                          "belong to which is not known; make the pairing explicit"):
        list_inputs((str(manifest), str(tmp_path / "meta2" / "tarred_audio_manifest.json"),
                     f"{tmp_path}/shards/audio_{{0..1}}.tar"), "auto", Storage())


# --- gzip manifests ------------------------------------------------------------------------------

def test_gzip_manifests_read_like_plain_ones(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes())
    body = jsonl({"audio_filepath": "a.wav", "text": "hello"})
    plain = manifest_table(body, f"{tmp_path}/m.jsonl", COLS).to_pylist()
    for name, data in (("m.jsonl.gz", gzip.compress(body)), ("m.json.gz", gzip.compress(body)),
                       ("m.jsonl", gzip.compress(body))):
        assert manifest_table(data, f"{tmp_path}/{name}", COLS).to_pylist() == plain
    assert plain[0]["id"] == "a" and plain[0]["reference"] == "hello"
    with pytest.raises(ConfigError, match="is named .gz but is not gzip-compressed"):
        manifest_table(body, f"{tmp_path}/m.jsonl.gz", COLS)
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(body))
    listing, rows = index_rows(tmp_path / "m.jsonl.gz")
    assert listing.format == "manifest" and [r["id"] for r in rows] == ["a"]


# --- lhotse ---------------------------------------------------------------------------------------

def test_lhotse_recordings_supervisions_and_cuts_with_spans_and_channels(tmp_path):
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "call.wav").write_bytes(wav_bytes(4.0, channels=2))
    (tmp_path / "audio" / "mono.wav").write_bytes(wav_bytes(1.0))
    call = Recording.from_file(tmp_path / "audio" / "call.wav", recording_id="call")
    mono = Recording.from_file(tmp_path / "audio" / "mono.wav", recording_id="mono")
    for rec in (call, mono):        # lhotse keeps the path as given; make it relative
        rec.sources[0].source = f"audio/{rec.id}.wav"
    sups = [SupervisionSegment("call-agent", "call", start=0.5, duration=1.0, channel=0, text="hello"),
            SupervisionSegment("call-customer", "call", start=2.0, duration=1.5, channel=1, text="hi")]
    sets = tmp_path / "sets"
    sets.mkdir()
    RecordingSet.from_recordings([call, mono]).to_file(sets / "corpus_recordings_dev.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(sets / "corpus_supervisions_dev.jsonl.gz")
    # recordings resolve against the manifest's folder: keep them beside it
    (sets / "audio").mkdir()
    for name in ("call.wav", "mono.wav"):
        (sets / "audio" / name).write_bytes((tmp_path / "audio" / name).read_bytes())
    listing, rows = index_rows(sets)
    assert listing.format == "lhotse"
    got = [(r["id"], r["uri"], r["start_s"], r["end_s"], r["channel"], r["reference"], r["error"])
           for r in rows]
    assert got == [
        ("call-agent", f"{sets}/audio/call.wav", 0.5, 1.5, 0, "hello", None),
        ("call-customer", f"{sets}/audio/call.wav", 2.0, 3.5, 1, "hi", None),
        ("mono", f"{sets}/audio/mono.wav", None, None, None, None, None)]

    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings([call]),
                                 supervisions=SupervisionSet.from_segments(sups)).trim_to_supervisions()
    cuts_dir = tmp_path / "cuts"
    (cuts_dir / "audio").mkdir(parents=True)
    (cuts_dir / "audio" / "call.wav").write_bytes((tmp_path / "audio" / "call.wav").read_bytes())
    cuts.to_file(cuts_dir / "dev_cuts.jsonl.gz")
    listing, rows = index_rows(cuts_dir / "dev_cuts.jsonl.gz")
    assert listing.format == "lhotse"
    got = sorted((r["start_s"], r["end_s"], r["channel"], r["reference"], r["uri"]) for r in rows)
    assert got == [(0.5, 1.5, 0, "hello", f"{cuts_dir}/audio/call.wav"),
                   (2.0, 3.5, 1, "hi", f"{cuts_dir}/audio/call.wav")]
    assert sorted(r["id"] for r in rows) == sorted(c.id for c in cuts)


def test_lhotse_unreadable_sources_are_error_rows(tmp_path):
    rec = {"id": "r1", "sources": [{"type": "command", "channels": [0], "source": "sox x -"}],
           "sampling_rate": 16000, "num_samples": 16000, "duration": 1.0}
    (tmp_path / "x_recordings.jsonl").write_bytes(jsonl(rec))
    (tmp_path / "x_supervisions.jsonl").write_bytes(jsonl(
        {"id": "s1", "recording_id": "r1", "start": 0, "duration": 1, "channel": 0, "text": "a"},
        {"id": "s2", "recording_id": "r9", "start": 0, "duration": 1, "channel": 0, "text": "b"}))
    _, rows = index_rows(tmp_path)
    errors = {r["id"]: r["error"] for r in rows}
    assert "audio source type 'command' is not read" in errors["s1"]
    assert "names recording 'r9', which x_recordings.jsonl does not have" in errors["s2"]
    assert len(rows) == 2


# --- folders that describe themselves; ids across splits ------------------------------------------

def test_folder_with_audio_and_manifest_reads_the_manifest_and_says_so(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.wav").write_bytes(wav_bytes())
    (tmp_path / "manifest.jsonl").write_bytes(jsonl({"audio_filepath": "a.wav", "text": "aa"},
                                                    {"audio_filepath": "b.wav", "text": "bb"}))
    listing, rows = index_rows(tmp_path)
    assert listing.format == "manifest"
    assert [(r["id"], r["reference"]) for r in rows] == [("a", "aa"), ("b", "bb")]
    assert len(listing.notes) == 1 and "reading 1 manifest(s) (manifest.jsonl)" in listing.notes[0]
    listing = list_input(str(tmp_path), "audio", Storage())
    assert listing.format == "audio" and len(listing.files) == 2
    (note,) = listing.notes
    assert "holds manifest file(s) (manifest.jsonl), which --format audio does not read" in note
    assert "leave out --format" in note and "pass --format audio" not in note
    # a sidecar beside its audio file is not a manifest
    sidecar = tmp_path / "side"
    sidecar.mkdir()
    (sidecar / "a.wav").write_bytes(wav_bytes())
    (sidecar / "a.json").write_bytes(b'{"speaker": "x"}')
    assert list_input(str(sidecar), "auto", Storage()).format == "audio"


def test_audiofolder_split_folders_never_share_ids(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "0000.flac").write_bytes(wav_bytes())
        (tmp_path / split / "metadata.csv").write_text(f"file_name,transcription\n0000.flac,{split} one\n")
    listing, rows = index_rows(tmp_path)
    assert listing.format == "manifest"
    assert "reading 2 manifest(s) (test/metadata.csv, train/metadata.csv)" in listing.notes[0]
    assert [(r["id"], r["reference"], r["uri"]) for r in rows] == [
        ("test/0000", "test one", f"{tmp_path}/test/0000.flac"),
        ("train/0000", "train one", f"{tmp_path}/train/0000.flac")]
    # a single manifest keeps its ids relative to its own folder
    _, rows = index_rows(tmp_path / "train" / "metadata.csv")
    assert [r["id"] for r in rows] == ["0000"]


# --- ghost files, tar links, binary members ---------------------------------------------------------

def test_macos_ghost_files_are_skipped_and_counted(tmp_path):
    (tmp_path / "a.flac").write_bytes(b"x")
    (tmp_path / "._a.flac").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "._a.flac").write_bytes(b"\x00\x05\x16\x07")
    listing = list_input(str(tmp_path), "auto", Storage())
    assert listing.format == "audio"
    assert listing.files == (f"{tmp_path}/a.flac",) and listing.ghosts == 3


def test_tar_ghosts_links_and_binary_text(tmp_path):
    from pipeline.sources.items import ghosts_of
    from pipeline.sources.shards import tar_index

    audio = wav_bytes()
    spans = write_tar(tmp_path / "s.tar", [
        ("./utt1.flac", audio, None, None), ("./utt1.txt", b"hello world", None, None),
        ("./._utt1.flac", b"\x00\x05\x16\x07\x00\x02", None, None),
        ("./._utt1.txt", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X", None, None),
        ("./utt2.flac", None, "hard", "./utt1.flac"),
        ("./utt3.flac", None, "sym", "utt1.flac"),
        ("./utt4.flac", audio, None, None), ("./utt4.txt", b"\xff\xfe\x00b\x00i\x00n", None, None)])
    with open(tmp_path / "s.tar", "rb") as f:
        table = tar_index(f"{tmp_path}/s.tar", f, COLS)
    assert ghosts_of(table) == 2
    rows = {r["id"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["utt1", "utt2", "utt3", "utt4"]
    assert (rows["utt1"]["offset"], rows["utt1"]["length"]) == spans["./utt1.flac"]
    assert (rows["utt2"]["offset"], rows["utt2"]["length"]) == spans["./utt1.flac"]
    assert rows["utt2"]["error"] is None
    assert rows["utt1"]["reference"] == "hello world"
    assert "symbolic link to 'utt1.flac' in this tar" in rows["utt3"]["error"]
    assert rows["utt4"]["reference"] is None and rows["utt4"]["error"] is None


# --- channels ----------------------------------------------------------------------------------------

def test_channel_rows_decode_that_channel_and_get_their_own_ids(tmp_path):
    data = wav_bytes(1.0, channels=2)
    (tmp_path / "call.wav").write_bytes(data)
    rows = manifest_table(jsonl({"audio_filepath": "call.wav", "channel": 0},
                                {"audio_filepath": "call.wav", "channel": 1},
                                {"audio_filepath": "call.wav", "channel": "left"}),
                          f"{tmp_path}/m.jsonl", COLS).to_pylist()
    assert [(r["id"], r["channel"]) for r in rows[:2]] == [("call#ch0", 0), ("call#ch1", 1)]
    assert rows[2]["error"] == "manifest row 3: channel 'left' is not a channel number (0, 1, ...)"
    stereo, _ = sf.read(io.BytesIO(data), dtype="float32")
    np.testing.assert_allclose(decode(data, channel=1), stereo[:, 1], atol=1e-6)
    np.testing.assert_allclose(decode(data), stereo.mean(axis=1), atol=1e-6)
    with pytest.raises(BadAudio, match=r"channel 2 asked for, but the audio has 2 channel\(s\)"):
        decode(data, channel=2)


# --- path spellings -------------------------------------------------------------------------------

def test_backslashes_tilde_and_drive_letters_in_manifest_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rows = manifest_table(jsonl({"audio_filepath": "clips\\a.wav"}, {"audio_filepath": "~/b.wav"},
                                {"audio_filepath": "C:\\data\\c.wav"}),
                          f"{tmp_path}/m.jsonl", COLS).to_pylist()
    assert [(r["id"], r["uri"]) for r in rows[:2]] == [
        ("clips/a", f"{tmp_path}/clips/a.wav"),
        ("home/b", f"{tmp_path}/home/b.wav")]     # ~ is the home folder, here inside the manifest's
    assert rows[2]["error"].startswith(
        "manifest row 3: audio path 'C:\\\\data\\\\c.wav' is a Windows path with a drive letter")


def test_a_name_in_the_other_unicode_form_is_named_in_the_error(tmp_path):
    import unicodedata

    from pipeline.stages.fetch import fetch_audio
    from pipeline.sources.items import file_item

    nfd = unicodedata.normalize("NFD", f"{tmp_path}/café.wav")
    with open(nfd, "wb") as f:
        f.write(wav_bytes())
    nfc = unicodedata.normalize("NFC", nfd)
    ((data, error),) = fetch_audio([file_item("cafe", nfc)], Storage())
    assert data is None and "the name exists in Unicode NFD form" in error


# --- Hugging Face save_to_disk folders ------------------------------------------------------------

def save_to_disk(folder, clips: list[bytes], texts: list[str], batch_rows: int = 2) -> None:
    """What ``datasets.Dataset.save_to_disk`` writes: an Arrow IPC stream of ``batch_rows``-row
    record batches, ``state.json`` and a pretty-printed ``dataset_info.json``."""
    import pyarrow as pa

    folder.mkdir(parents=True)
    table = pa.table({"audio": [{"bytes": c, "path": f"clip{i}.wav"} for i, c in enumerate(clips)],
                      "text": texts})
    with pa.ipc.new_stream(str(folder / "data-00000-of-00001.arrow"), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    (folder / "state.json").write_text(json.dumps(
        {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": folder.name}, indent=2))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {"text": {}}}, indent=2))


def test_save_to_disk_dataset_dict_reads_each_split_with_distinct_ids(tmp_path):
    from pipeline.stages.fetch import fetch_audio

    clips = [wav_bytes(0.5 + 0.1 * i) for i in range(5)]
    root = tmp_path / "dd"
    save_to_disk(root / "train", clips[:3], ["t0", "t1", "t2"])
    save_to_disk(root / "test", clips[3:], ["s0", "s1"])
    (root / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    listing, rows = index_rows(root)
    assert listing.format == "arrow"
    assert [(r["id"], r["reference"], r["row_group"], r["row_in_group"]) for r in rows] == [
        ("test/data-00000-of-00001/0", "s0", 0, 0), ("test/data-00000-of-00001/1", "s1", 0, 1),
        ("train/data-00000-of-00001/0", "t0", 0, 0), ("train/data-00000-of-00001/1", "t1", 0, 1),
        ("train/data-00000-of-00001/2", "t2", 1, 0)]
    fetched = fetch_audio(rows, Storage())
    assert [data for data, _ in fetched] == clips[3:] + clips[:3]
    assert all(error is None for _, error in fetched)


# --- jobs.evaluate sniffs columns through the same readers ------------------------------------------

def test_evaluate_finds_columns_of_every_layout_transcribe_reads(tmp_path):
    from pipeline.evaluation.specs import pick_text_column, table_columns

    rows = [{"audio_filepath": "a.wav", "sentence": "x"}, {"audio_filepath": "b.wav", "sentence": "y"}]
    (tmp_path / "pretty.json").write_text(json.dumps(rows, indent=2))
    (tmp_path / "oneline.json").write_text(json.dumps(rows))
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(jsonl(*rows)))
    for name in ("pretty.json", "oneline.json", "m.jsonl.gz"):
        columns = table_columns(Storage(), str(tmp_path / name))
        assert columns == ["audio_filepath", "sentence"], name
        assert pick_text_column(columns, None, name) == "sentence"
    save_to_disk(tmp_path / "saved", [wav_bytes()], ["t"])
    assert table_columns(Storage(), str(tmp_path / "saved")) == ["audio", "text"]
    split = tmp_path / "af" / "train"
    split.mkdir(parents=True)
    (split / "0.flac").write_bytes(b"x")
    (split / "metadata.csv").write_text("file_name,transcription\n0.flac,hi\n")
    assert table_columns(Storage(), str(tmp_path / "af")) == ["file_name", "transcription"]
    nemo_tarred(tmp_path / "nemo" if (tmp_path / "nemo").mkdir() is None else None)
    assert table_columns(Storage(), str(tmp_path / "nemo"))[:3] == ["audio_filepath", "offset",
                                                                   "duration"]


def test_channel_flag_reaches_the_config_and_fills_rows_without_a_channel():
    from jobs.transcribe import build_parser, config_from_args
    from pipeline.sources.index import with_channel
    from pipeline.sources.items import ALL_CHANNELS, file_item, items_table

    def config(value):
        return config_from_args(build_parser().parse_args(
            ["--input", "x", "--output", "o", "--channel", value]))

    assert (config("all").channel, config("1").channel) == ("all", 1)
    with pytest.raises(ConfigError, match="--channel must be a channel number"):
        config("left")
    table = items_table([file_item("a", "/a.wav"), {**file_item("b", "/b.wav"), "channel": 0}])
    assert with_channel(table, 1).column("channel").to_pylist() == [1, 0]
    assert with_channel(table, "all").column("channel").to_pylist() == [ALL_CHANNELS, 0]
    assert with_channel(table, None).column("channel").to_pylist() == [None, 0]


def test_a_tarred_manifest_read_as_a_plain_manifest_says_what_it_is(tmp_path):
    nemo_tarred(tmp_path)
    listing = list_input(str(tmp_path / "tarred_audio_manifest.json"), "manifest", Storage())
    (note,) = listing.notes
    assert "is a NeMo tarred manifest" in note and "leave out --format" in note
    assert "--format manifest does not open" in note


def test_nemo_tarred_unreadable_shard_gives_error_rows(tmp_path):
    nemo_tarred(tmp_path)
    (tmp_path / "audio_1.tar").write_bytes(b"not a tar at all" * 10)
    _, rows = index_rows(tmp_path)
    errors = {r["id"]: r["error"] for r in rows}
    assert errors["c"].startswith("manifest row 4: tar shard audio_1.tar cannot be read")
    assert errors["b"] is None and len(rows) == 6


def test_row_group_runs_split_blocks_where_the_row_group_changes():
    import pyarrow as pa

    from pipeline.sources.items import ITEM_SCHEMA, file_item, parquet_item
    from pipeline.stages.fetch import row_group_runs

    items = [parquet_item(f"a/{i}", "s", "a.parquet", g, i, "audio") for i, g in
             enumerate([0, 0, 0, 1, 1])] + [file_item("f1", "x.wav"), file_item("f2", "y.wav")] + \
        [parquet_item("b/0", "s", "b.parquet", 1, 0, "audio")]
    table = pa.Table.from_pylist(items, schema=ITEM_SCHEMA)
    assert row_group_runs(table) == [(0, 3), (3, 5), (5, 7), (7, 8)]
    assert row_group_runs(table.slice(5, 2)) == [(0, 2)]
