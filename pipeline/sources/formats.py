"""Input formats: the file extensions of each, and telling an input's format from its files.

Audio extensions cover what soundfile (libsndfile) reads and what the PyAV fallback decodes
(FFmpeg: AAC/m4a, mp4, webm/opus, wma, amr, ...): a folder never skips a file that may be audio.
"""

from __future__ import annotations

import posixpath
import re

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
    "arrow": frozenset({"arrow"}),
}
FORMAT_NAMES = ("audio", "manifest", "parquet", "webdataset", "librispeech", "kaldi", "nemo-tarred",
                "lhotse", "arrow")
FORMAT_HELP = "pass --format " + "|".join(FORMAT_NAMES)
# NeMo's ``convert_to_tarred_audio_dataset.py`` writes ``tarred_audio_manifest.json`` beside
# ``audio_0.tar`` ... (``sharded_manifests/manifest_N.json`` hold the same rows split by shard).
NEMO_TARRED_MANIFEST = re.compile(r"^tarred_audio_manifest[^/]*\.jsonl?(\.gz)?$")
# lhotse recipes write ``<corpus>_recordings_<part>.jsonl.gz``, ``..._supervisions_...``,
# ``..._cuts_...`` (``lhotse/recipes/*``; ``CutSet.to_file``).
LHOTSE_MANIFEST = re.compile(r"(^|[_.-])(recordings|supervisions|cuts)([_.-]|$)")
# Hugging Face ``audiofolder``: ``metadata.csv``/``metadata.jsonl`` in the folder (or in each split
# folder) whose ``file_name`` column names the audio relative to that folder.
AUDIOFOLDER_METADATA = frozenset({"metadata.csv", "metadata.jsonl"})
# What macOS leaves in folders and archives (AppleDouble ``._name`` companions, ``__MACOSX/`` in
# zips, Finder's ``.DS_Store``): never audio, skipped as ``webdataset`` and macOS tools skip them.
# Metadata files that are not manifests (Hugging Face ``save_to_disk``, hub repos).
NOT_MANIFESTS = frozenset({"dataset_info.json", "dataset_infos.json", "state.json",
                           "dataset_dict.json"})
GHOST_NAMES = frozenset({".DS_Store", "__MACOSX", ".AppleDouble"})


def extension(path: str) -> str:
    """Lower-case last extension of the last path component (``''`` if none)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def manifest_extension(path: str) -> str:
    """The extension of a text manifest, through a ``.gz`` (``train.jsonl.gz`` → ``jsonl``)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return extension(name)


def is_ghost(path: str) -> bool:
    """Whether ``path`` is macOS metadata (``._x.flac``, anything under ``__MACOSX/``,
    ``.DS_Store``) rather than data."""
    parts = path.replace("\\", "/").split("/")
    return parts[-1].startswith("._") or any(part in GHOST_NAMES for part in parts)


def is_nemo_tarred_manifest(path: str) -> bool:
    return bool(NEMO_TARRED_MANIFEST.match(posixpath.basename(path)))


def lhotse_role(path: str) -> str | None:
    """``recordings``/``supervisions``/``cuts`` for a lhotse JSONL manifest (``.gz`` or not)."""
    name = posixpath.basename(path)
    if manifest_extension(name) not in ("jsonl", "json"):
        return None
    match = LHOTSE_MANIFEST.search(name.split(".", 1)[0])
    return match.group(2) if match else None


def is_librispeech_transcript(path: str) -> bool:
    return path.endswith(LIBRISPEECH_TRANSCRIPT_SUFFIX)


def is_kaldi_file(path: str) -> bool:
    return posixpath.basename(path) in KALDI_FILES


def describing_files(files: list[str]) -> dict[str, list[str]]:
    """The files of a folder that say how to read it, by the format they make it.

    ``nemo-tarred``: ``tarred_audio_manifest*.json`` (NeMo tarred dataset); ``lhotse``: lhotse
    recordings/supervisions/cuts manifests; ``manifest``: HF ``audiofolder`` ``metadata.csv`` /
    ``metadata.jsonl`` files and any other manifest (``.jsonl``/``.json``/``.csv``/``.tsv``, also
    ``.gz``) beside audio files that is not a sidecar of one of them (``a.json`` beside
    ``a.flac``) nor a known metadata file (:data:`NOT_MANIFESTS`).
    One rule for every layout, so that a folder never hides what it says about itself.
    """
    audio_stems = {f.rsplit(".", 1)[0] for f in files if extension(f) in AUDIO_EXTENSIONS}
    found: dict[str, list[str]] = {}
    for f in files:
        if is_ghost(f) or manifest_extension(f) not in MANIFEST_EXTENSIONS:
            continue
        if is_nemo_tarred_manifest(f):
            found.setdefault("nemo-tarred", []).append(f)
        elif "/sharded_manifests/" in f:
            continue          # NeMo's per-shard copies of tarred_audio_manifest.json
        elif lhotse_role(f):
            found.setdefault("lhotse", []).append(f)
        elif posixpath.basename(f) in AUDIOFOLDER_METADATA or (
                audio_stems and posixpath.basename(f) not in NOT_MANIFESTS
                and f.rsplit(".", 2 if f.lower().endswith(".gz") else 1)[0] not in audio_stems):
            found.setdefault("manifest", []).append(f)
    return found


def detect_format(files: list[str], is_single_file: bool) -> str:
    """The format of an input from the names of its files.

    A single file: by its name (a NeMo tarred manifest, a lhotse manifest, another manifest, a
    shard, an audio file). A folder: a Hugging Face ``save_to_disk`` folder (``state.json`` beside
    ``.arrow`` shards); a ``wav.scp`` makes it a Kaldi data dir (or a folder of them),
    ``*.trans.txt`` files a LibriSpeech tree; then the files that describe it
    (:func:`describing_files`, in the order NeMo tarred, lhotse, manifests); else tar > parquet >
    arrow > audio.
    """
    exts = {extension(f) for f in files}
    if is_single_file:
        if is_nemo_tarred_manifest(files[0]):
            return "nemo-tarred"
        if lhotse_role(files[0]):
            return "lhotse"
        if manifest_extension(files[0]) in MANIFEST_EXTENSIONS:
            return "manifest"
    else:
        if is_save_to_disk(files):
            return "arrow"
        if any(posixpath.basename(f) == KALDI_WAV_SCP for f in files):
            return "kaldi"
        if any(is_librispeech_transcript(f) for f in files):
            return "librispeech"
        described = describing_files(files)
        for fmt in ("nemo-tarred", "lhotse", "manifest"):
            if fmt in described:
                return fmt
    for fmt in ("webdataset", "parquet", "arrow", "audio"):
        if exts & FORMAT_EXTENSIONS[fmt]:
            return fmt
    raise ConfigError(
        f"cannot tell the format of the input from its files ({', '.join(sorted(exts)) or 'none'}); "
        f"{FORMAT_HELP}")


def is_save_to_disk(files: list[str]) -> bool:
    """A Hugging Face ``save_to_disk`` folder (or ``DatasetDict`` of them): a ``state.json`` with
    ``.arrow`` shards beside it."""
    states = {posixpath.dirname(f) for f in files if posixpath.basename(f) == "state.json"}
    return any(extension(f) == "arrow" and posixpath.dirname(f) in states for f in files)


def is_arrow_data(path: str) -> bool:
    """An Arrow shard of a ``save_to_disk`` folder (``cache-*.arrow`` files are not data)."""
    return extension(path) == "arrow" and not posixpath.basename(path).startswith("cache-")


def keeps(fmt: str, path: str) -> bool:
    """Whether a listed file belongs to an input of format ``fmt``."""
    if is_ghost(path):
        return False
    if fmt == "kaldi":
        return is_kaldi_file(path)
    if fmt == "librispeech":
        return is_librispeech_transcript(path) or extension(path) in AUDIO_EXTENSIONS
    if fmt == "nemo-tarred":
        return is_nemo_tarred_manifest(path) or extension(path) == "tar"
    if fmt == "lhotse":
        return lhotse_role(path) is not None
    if fmt == "manifest":
        return manifest_extension(path) in MANIFEST_EXTENSIONS
    if fmt == "arrow":
        return is_arrow_data(path)
    return extension(path) in FORMAT_EXTENSIONS[fmt]
