"""Where a chunked set's ``file_name`` values are found when the dataset file gives no audio_root."""

from __future__ import annotations

from pipeline.evaluation.specs import default_audio_root
from pipeline.storage import Storage


def test_leaderboard_layout_audio_folder(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "0001-0.flac").write_bytes(b"x")
    assert default_audio_root(Storage(), str(tmp_path), "0001-0.flac") == str(tmp_path / "audio")


def test_names_that_resolve_from_the_table_folder(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "0001-0.flac").write_bytes(b"x")
    (tmp_path / "beside.flac").write_bytes(b"x")
    assert default_audio_root(Storage(), str(tmp_path), "audio/0001-0.flac") == str(tmp_path)
    assert default_audio_root(Storage(), str(tmp_path), "beside.flac") == str(tmp_path)
