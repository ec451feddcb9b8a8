"""Input formats: the file extensions of each, and telling an input's format from its files.

Audio extensions cover what soundfile (libsndfile) reads and what the PyAV fallback decodes
(FFmpeg: AAC/m4a, mp4, webm/opus, wma, amr, ...): a folder never skips a file that may be audio.
"""

from __future__ import annotations

import posixpath

from pipeline.config import ConfigError

AUDIO_EXTENSIONS = frozenset({
    # libsndfile
    "flac", "wav", "wave", "mp3", "ogg", "oga", "opus", "aiff", "aif", "aifc", "au", "snd", "w64",
    "sph", "nist", "caf", "rf64", "voc", "wv", "mat", "sd2", "paf", "svx", "xi", "htk",
    # FFmpeg (PyAV)
    "m4a", "mp4", "m4b", "aac", "webm", "mka", "mkv", "wma", "asf", "amr", "3gp", "ac3", "mp2",
    "spx", "ape", "ra", "mov",
})
MANIFEST_EXTENSIONS = frozenset({"jsonl", "json", "csv", "tsv"})
LIBRISPEECH_TRANSCRIPT_SUFFIX = ".trans.txt"
KALDI_WAV_SCP = "wav.scp"
KALDI_FILES = ("wav.scp", "text", "segments")
FORMAT_EXTENSIONS = {
    "audio": AUDIO_EXTENSIONS,
    "manifest": MANIFEST_EXTENSIONS,
    "parquet": frozenset({"parquet"}),
    "webdataset": frozenset({"tar"}),
}
FORMAT_HELP = "pass --format audio|manifest|parquet|webdataset|librispeech|kaldi"


def extension(path: str) -> str:
    """Lower-case last extension of the last path component (``''`` if none)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def is_librispeech_transcript(path: str) -> bool:
    return path.endswith(LIBRISPEECH_TRANSCRIPT_SUFFIX)


def is_kaldi_file(path: str) -> bool:
    return posixpath.basename(path) in KALDI_FILES


def detect_format(files: list[str], is_single_file: bool) -> str:
    """The format of an input from the names of its files.

    A single file: by its extension (a manifest, a shard, an audio file). A folder: a ``wav.scp``
    makes it a Kaldi data dir (or a folder of them); ``*.trans.txt`` files a LibriSpeech tree;
    otherwise tar > parquet > audio (manifests in a folder need ``--format manifest``).
    """
    exts = {extension(f) for f in files}
    if is_single_file and exts & MANIFEST_EXTENSIONS:
        return "manifest"
    if not is_single_file:
        if any(posixpath.basename(f) == KALDI_WAV_SCP for f in files):
            return "kaldi"
        if any(is_librispeech_transcript(f) for f in files):
            return "librispeech"
    for fmt in ("webdataset", "parquet", "audio"):
        if exts & FORMAT_EXTENSIONS[fmt]:
            return fmt
    raise ConfigError(
        f"cannot tell the format of the input from its files ({', '.join(sorted(exts)) or 'none'}); "
        f"{FORMAT_HELP}")


def keeps(fmt: str, path: str) -> bool:
    """Whether a listed file belongs to an input of format ``fmt``."""
    if fmt == "kaldi":
        return is_kaldi_file(path)
    if fmt == "librispeech":
        return is_librispeech_transcript(path) or extension(path) in AUDIO_EXTENSIONS
    return extension(path) in FORMAT_EXTENSIONS[fmt]
