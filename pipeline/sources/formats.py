"""File extensions of the input formats."""

from __future__ import annotations

AUDIO_EXTENSIONS = frozenset({"flac", "wav", "mp3", "ogg", "opus", "oga", "aiff", "aif", "au", "w64"})
MANIFEST_EXTENSIONS = frozenset({"jsonl", "json", "csv", "tsv"})
FORMAT_EXTENSIONS = {
    "audio": AUDIO_EXTENSIONS,
    "manifest": MANIFEST_EXTENSIONS,
    "parquet": frozenset({"parquet"}),
    "webdataset": frozenset({"tar"}),
}


def extension(path: str) -> str:
    """Lower-case last extension of the last path component (``''`` if none)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""
