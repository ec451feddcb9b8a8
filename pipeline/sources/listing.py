"""Listing inputs on the driver: each ``--input``'s format and files, split into index units.

The driver only lists (file names, no bytes); every file is opened inside a Ray task
(``pipeline/sources/index.py``). Formats: a folder/prefix of audio files, JSONL/CSV/TSV
manifests, Parquet shards in the Hugging Face datasets layout, WebDataset tar shards, LibriSpeech
trees, Kaldi data dirs. Each ``--input`` may be a folder/prefix, a single file or a glob
(``s3://bkt/shards/train-*.tar``).
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, replace

from pipeline.config import ConfigError
from pipeline.retry import StorageUnavailable, retry_call
from pipeline.sources.formats import (
    FORMAT_EXTENSIONS, FORMAT_HELP, KALDI_WAV_SCP, describing_files, detect_format, extension,
    is_ghost, is_librispeech_transcript, is_nemo_tarred_manifest, keeps, lhotse_role,
)
from pipeline.sources.ids import shard_prefixes, strip_extension
from pipeline.storage import STORAGE_ERRORS, Storage, storage_advice, storage_error_line, to_uri

# Audio files of a folder are indexed this many to a Ray task.
FILES_PER_UNIT = 4096
# Tars of a NeMo tarred dataset whose member headers one index task scans.
TARS_PER_UNIT = 8
GHOST_NOTE = "macOS metadata files (._*, __MACOSX/, .DS_Store)"


@dataclass(frozen=True)
class Listing:
    """One input resolved: its format, root (URI the ids are relative to) and its files (URIs,
    sorted)."""

    input: str
    format: str
    root: str
    files: tuple[str, ...]
    single: bool = False            # the input named one file (ids start from its folder)
    notes: tuple[str, ...] = ()     # what the driver says about the input (one line each)
    ghosts: int = 0                 # macOS metadata files skipped


@dataclass(frozen=True)
class IndexUnit:
    """The work of one index task.

    ``kind``: ``files`` (audio files, ids relative to ``root``), ``manifest``, ``parquet``,
    ``webdataset`` (one file each), ``librispeech`` (``uris[0]`` the chapter's ``*.trans.txt``,
    then its audio files; ``root`` the tree), ``kaldi`` (the data dir ``root``'s files),
    ``nemo-tarred`` (``uris[0]`` the tarred manifest, then every tar of the set; this task owns
    part ``part[0]`` of ``part[1]`` of the tars), ``lhotse`` (one set's manifests). For manifests
    ``root`` is the folder derived ids start from.
    """

    kind: str
    uris: tuple[str, ...]
    root: str = ""
    part: tuple[int, int] = (0, 1)
    # With several --input: the folder all of them lie under; derived ids of every kind then
    # start there instead of at ``root`` (``plan_units``). "": ids as for a single input.
    id_base: str = ""
    # A Parquet/Arrow shard: what its derived ids start with (``ids.shard_prefixes``).
    id_prefix: str = ""

    @property
    def id_root(self) -> str:
        """The folder derived ids are relative to: ``id_base`` when set, else ``root``."""
        return self.id_base or self.root


def brace_paths(path: str) -> list[str] | None:
    """The paths of a brace pattern (``audio_{0..3}.tar``, NeMo's ``audio__OP_0..3_CL_.tar``,
    ``{a,b}``) as NeMo's ``expand_sharded_filepaths`` reads it; ``None`` when ``path`` has none."""
    import braceexpand

    spelled = path.replace("_OP_", "{").replace("_CL_", "}")
    if "{" not in spelled or "}" not in spelled:
        return None
    paths = list(braceexpand.braceexpand(spelled, escape=False))
    return paths if paths != [spelled] else None


def _find(fs, path: str) -> tuple[list[str], str, bool] | None:
    """(files, root, is single file) of ``path`` in ``fs``; ``None`` if it does not exist.

    Raises:
        ConfigError: a path of a brace pattern does not exist (naming it).
    """
    expanded = brace_paths(path)
    if expanded is not None:
        missing = [p for p in expanded if not fs.isfile(p)]
        if missing:
            raise ConfigError(f"--input {path!r}: {missing[0]} (of the {len(expanded)} files of "
                              f"the brace pattern) does not exist"
                              + (f", nor {len(missing) - 1} more" if len(missing) > 1 else ""))
        return sorted(set(expanded)), posixpath.dirname(expanded[0]), False
    if any(ch in path for ch in "*?["):
        return sorted(fs.glob(path)), path.split("*", 1)[0].rsplit("/", 1)[0], False
    if fs.isfile(path):
        return [path], path.rsplit("/", 1)[0], True
    if fs.isdir(path):
        return sorted(fs.find(path)), path.rstrip("/"), False
    return None


def list_input(uri: str, fmt: str, storage: Storage, tars_elsewhere: bool = False) -> Listing:
    """List ``uri`` once (recursively) and keep the files of its format.

    ``tars_elsewhere``: a NeMo tarred manifest without tars beside it is listed alone (its tars
    may be another ``--input``: :func:`list_inputs`) instead of refused."""
    fs, path = storage.filesystem(uri)
    try:
        listed = retry_call(lambda: _find(fs, path), what=f"listing {uri}",
                            budget_s=storage.retry_seconds, redact=storage.redact)
    except STORAGE_ERRORS as e:
        raise ConfigError(storage.redact(storage_error_line(f"--input {uri!r}", e))) from e
    except StorageUnavailable as e:   # before any work: no --resume to advise, a setting to check
        cause = e.__cause__
        if cause is None or storage_advice(cause) is None:
            raise
        raise ConfigError(storage.redact(storage_error_line(f"--input {uri!r}", cause))) from e
    if listed is None:
        raise ConfigError(f"--input {uri!r} does not exist (or is not readable); check the path "
                          "(for s3:// also --s3-endpoint and the AWS credentials)")
    found, root, single = listed
    found = [f for f in found if not f.endswith("/")]
    if not found:
        raise ConfigError(f"--input {uri!r} is empty (no files); point --input at a folder of "
                          "audio files, a manifest, or Parquet/tar shards")
    ghosts = sum(is_ghost(f) for f in found)
    found = [f for f in found if not is_ghost(f)] if ghosts < len(found) else found
    if single and is_nemo_tarred_manifest(found[0]) and fmt in ("auto", "nemo-tarred"):
        found = found + _tars_beside(fs, found[0], uri, storage, tars_elsewhere)
        single = False
    elif not single and fmt in ("auto", "nemo-tarred") and all(extension(f) == "tar" for f in found):
        found = _tarred_manifests_beside(fs, root, storage) + found
    chosen = detect_format(found, single) if fmt == "auto" else fmt
    if chosen == "manifest" and fmt == "auto" and not single:
        keep = [to_uri(fs, f) for f in describing_files(found)["manifest"]]
    else:
        keep = [to_uri(fs, f) for f in found if keeps(chosen, f)]
    if chosen == "kaldi" and not any(posixpath.basename(f) == KALDI_WAV_SCP for f in keep):
        keep = []
    if chosen == "nemo-tarred" and not any(is_nemo_tarred_manifest(f) for f in keep):
        raise ConfigError(f"--input {uri!r} holds no NeMo tarred manifest "
                          "(tarred_audio_manifest.json); give the folder holding it and the tars")
    if not keep:
        wanted = ("wav.scp" if chosen == "kaldi" else "*.trans.txt and audio"
                  if chosen == "librispeech" else "lhotse recordings/supervisions/cuts manifests"
                  if chosen == "lhotse" else
                  "extensions " + ", ".join(sorted(FORMAT_EXTENSIONS[chosen])))
        others = "|".join(f for f in FORMAT_HELP.removeprefix("pass --format ").split("|")
                          if f != chosen)
        raise ConfigError(f"--input {uri!r} holds no {chosen} files ({wanted}); "
                          f"pass --format {others}" + ("" if fmt == "auto" else " or leave it out"))
    notes = () if single else _notes(uri, fmt, chosen, found, keep)
    if single and chosen != "nemo-tarred" and is_nemo_tarred_manifest(found[0]):
        notes = (f"--input {uri} is a NeMo tarred manifest: its audio paths name members of the "
                 f"audio_<shard_id>.tar files beside it, which --format {chosen} does not open; "
                 "leave out --format to read them",)
    return Listing(input=uri, format=chosen, root=to_uri(fs, root), files=tuple(keep),
                   single=single, notes=notes, ghosts=ghosts)


def _tars_beside(fs, manifest: str, uri: str, storage: Storage, elsewhere: bool) -> list[str]:
    folder = posixpath.dirname(manifest)
    tars = sorted(p for p in retry_call(lambda: fs.ls(folder, detail=False), what=f"listing {folder}",
                                        budget_s=storage.retry_seconds, redact=storage.redact)
                  if extension(p) == "tar" and not is_ghost(p))
    if not tars and not elsewhere:
        raise ConfigError(no_tars_message(uri, folder))
    return tars


def no_tars_message(uri: str, folder: str) -> str:
    """The one line for a NeMo tarred manifest ``uri`` whose folder holds no tars and whose tars
    no other ``--input`` gives (how to give them)."""
    return (f"--input {uri!r} is a NeMo tarred manifest, but its folder {folder} holds no "
            f"audio_<shard_id>.tar shards; give the tars as a second --input (NeMo's "
            "tarred_audio_filepaths: --input 'path/audio_{0..N}.tar') or keep them beside it")


def list_inputs(inputs: tuple[str, ...], fmt: str, storage: Storage) -> list[Listing]:
    """Every ``--input`` listed; a NeMo tarred manifest given alone with its tars elsewhere
    (NeMo's ``manifest_filepath`` and ``tarred_audio_filepaths``: ``--input manifest.json
    --input '/other/audio_{0..3}.tar'``, or each tar as an ``--input``) becomes one listing with
    the tars of the inputs that can only be its own: inputs made only of tars, holding no tarred
    manifest of their own, every tar named as NeMo names shards (``audio_<shard_id>.tar``). Every
    other input (a complete NeMo set, a WebDataset corpus) is read as itself.

    Raises:
        ConfigError: such a manifest has no tars beside it and no input of tars to pair with, or
            the pairing is ambiguous (several such manifests and inputs of tars, or only inputs of
            tars that are not its own): one line asking for an explicit pairing.
    """
    listings = [list_input(uri, fmt, storage, tars_elsewhere=len(inputs) > 1) for uri in inputs]
    alone = [i for i, listing in enumerate(listings) if _lone_manifest(listing)]
    if not alone:
        return listings
    tar_inputs = [j for j, listing in enumerate(listings) if _only_tars(listing)]
    theirs = [j for j in tar_inputs if _tars_of_a_lone_manifest(listings[j])]
    first = listings[alone[0]]
    if len(alone) > 1 and theirs:
        raise ConfigError(
            f"--input {first.input} and --input {listings[alone[1]].input} are NeMo tarred "
            f"manifests without tars beside them, and which of the tars of --input "
            f"{listings[theirs[0]].input} belong to which is not known; make the pairing "
            "explicit: put each manifest beside its tars and give each set as its own --input")
    if not theirs:
        others = [listings[j] for j in tar_inputs]
        if not others:
            raise ConfigError(no_tars_message(first.input, _folder(first.files[0])))
        raise ConfigError(
            f"--input {first.input} is a NeMo tarred manifest without tars beside it, and the "
            f"tars of --input {others[0].input} are not its own ({_why_not_its_tars(others[0])}); "
            "make the pairing explicit: give its tars alone, as NeMo names them (--input "
            "'path/audio_{0..N}.tar' in a folder without another manifest, or each tar as an "
            "--input)")
    out: list[Listing] = []
    for i, listing in enumerate(listings):
        if i in theirs:
            continue
        out.append(_with_tars(listing, [listings[j] for j in theirs]) if i in alone else listing)
    return out


def _lone_manifest(listing: Listing) -> bool:
    """A NeMo tarred manifest listed without tars (they are another ``--input``)."""
    return listing.format == "nemo-tarred" and all(is_nemo_tarred_manifest(f)
                                                   for f in listing.files)


def _tars_of_a_lone_manifest(listing: Listing) -> bool:
    """An input of tars (``_only_tars``) that may be a lone manifest's: no tarred manifest of its
    own, and every tar named ``audio_<shard_id>.tar`` (the members NeMo's manifest rows name)."""
    from pipeline.sources.nemo_tarred import shard_number

    return not any(is_nemo_tarred_manifest(f) for f in listing.files) and all(
        shard_number(f) is not None for f in listing.files)


def _why_not_its_tars(listing: Listing) -> str:
    own = [f for f in listing.files if is_nemo_tarred_manifest(f)]
    if own:
        return f"they are the set of {own[0]}, which is read with them"
    from pipeline.sources.nemo_tarred import shard_number

    odd = next(f for f in listing.files if shard_number(f) is None)
    return f"{posixpath.basename(odd)} is not named audio_<shard_id>.tar; they are read as they are"


def _with_tars(manifest: Listing, tar_listings: list[Listing]) -> Listing:
    """A lone tarred manifest's listing with the tars of ``tar_listings`` (other inputs, only
    tars: ``_tars_of_a_lone_manifest``)."""
    tars = tuple(f for other in tar_listings for f in other.files)
    given = ", ".join(other.input for other in tar_listings)
    return replace(manifest, files=manifest.files + tars, notes=manifest.notes + (
        f"--input {manifest.input}: its tars are --input {given} ({len(tars)} tar shards)",))


def _tarred_manifests_beside(fs, folder: str, storage: Storage) -> list[str]:
    """A NeMo tarred manifest in the folder of tar shards given alone (a brace pattern)."""
    try:
        names = retry_call(lambda: fs.ls(folder, detail=False), what=f"listing {folder}",
                           budget_s=storage.retry_seconds, redact=storage.redact)
    except OSError:
        return []
    return sorted(p for p in names if is_nemo_tarred_manifest(p))


def _under(folder: str, path: str) -> str:
    """``path`` relative to ``folder`` (``train/metadata.csv``), else its base name; either may
    carry a URI scheme (fsspec listings leave it out)."""
    root = folder.split("://", 1)[-1].rstrip("/") + "/"
    bare = path.split("://", 1)[-1]
    return bare[len(root):] if bare.startswith(root) else posixpath.basename(path)


def _notes(uri: str, fmt: str, chosen: str, found: list[str], keep: list[str]) -> tuple[str, ...]:
    """What the driver says at once about a folder: the files that describe it and whether they
    are read (never advising the ``--format`` just given)."""
    described = describing_files(found)
    notes = []
    for kind, files in described.items():
        shown = ", ".join(_under(uri, f) for f in files[:3]) + (
            f" and {len(files) - 3} more" if len(files) > 3 else "")
        if kind == chosen:
            if fmt == "auto" and kind == "manifest":
                notes.append(f"--input {uri}: reading {len(files)} manifest(s) ({shown}); its "
                             "audio files are read as the manifests name them (pass --format "
                             "audio to transcribe every audio file without references)")
            continue
        how = "leave out --format" if fmt != "auto" else f"pass --format {kind}"
        notes.append(f"--input {uri} holds {kind} file(s) ({shown}), which --format {chosen} does "
                     f"not read (no references or spans from them); {how} to read them")
    return tuple(notes)


def ghosts_note(count: int) -> str:
    """The console's mention of skipped macOS metadata files (``""`` for none)."""
    return f"; skipped {count} {GHOST_NOTE}" if count else ""


def _folder(uri: str) -> str:
    return posixpath.dirname(uri.rstrip("/"))


def _file_units(files, root: str) -> list[IndexUnit]:
    """Units of about ``FILES_PER_UNIT`` files; files that differ only by extension (``x.m4a``,
    ``x.mp4``: sorted next to each other) stay in one unit, where their ids are made distinct."""
    files, units, start = list(files), [], 0
    while start < len(files):
        end = min(start + FILES_PER_UNIT, len(files))
        while end < len(files) and strip_extension(files[end]) == strip_extension(files[end - 1]):
            end += 1
        units.append(IndexUnit("files", tuple(files[start:end]), root))
        start = end
    return units


def _librispeech_units(listing: Listing) -> list[IndexUnit]:
    """One unit per chapter folder (its ``*.trans.txt`` and audio); audio in folders without a
    transcript file is still indexed, as plain files without references."""
    transcripts: dict[str, list[str]] = defaultdict(list)
    audio: dict[str, list[str]] = defaultdict(list)
    for uri in listing.files:
        (transcripts if is_librispeech_transcript(uri) else audio)[_folder(uri)].append(uri)
    units = [IndexUnit("librispeech", (trans[0], *trans[1:], *audio.pop(folder, [])), listing.root)
             for folder, trans in sorted(transcripts.items())]
    loose = [uri for folder in sorted(audio) for uri in audio[folder]]
    return units + _file_units(loose, listing.root)   # ids as for audio (IndexUnit.id_root)


def _kaldi_units(listing: Listing) -> list[IndexUnit]:
    by_dir: dict[str, list[str]] = defaultdict(list)
    for uri in listing.files:
        by_dir[_folder(uri)].append(uri)
    return [IndexUnit("kaldi", tuple(files), folder) for folder, files in sorted(by_dir.items())
            if any(posixpath.basename(f) == KALDI_WAV_SCP for f in files)]


def _only_tars(listing: Listing) -> bool:
    """A listing of tar shards (a pattern, a glob or a folder of them), possibly with the tarred
    manifest found beside them, that is not itself a manifest given alone."""
    tars = [f for f in listing.files if extension(f) == "tar"]
    return listing.format in ("webdataset", "nemo-tarred") and bool(tars) and all(
        extension(f) == "tar" or is_nemo_tarred_manifest(f) for f in listing.files) and \
        not is_nemo_tarred_manifest(listing.input)


def _set_tars(listing: Listing, manifests: list[str]) -> dict[str, tuple[str, ...]]:
    """The tars of each tarred manifest: those in its folder; tars in no manifest's folder (a
    ``shards/`` subfolder, or another --input) belong to the one manifest when there is one.

    Raises:
        ConfigError: tars in no manifest's folder when several manifests could own them, or a
            shard number twice in one set (naming the tars): never left unread without a word.
    """
    from pipeline.sources.nemo_tarred import shard_number

    tars = [u for u in listing.files if extension(u) == "tar"]
    folders = {_folder(m) for m in manifests}
    own = {m: [t for t in tars if _folder(t) == _folder(m)] for m in manifests}
    stray = [t for t in tars if _folder(t) not in folders]
    if stray and len(manifests) > 1:
        more = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
        raise ConfigError(f"--input {listing.input!r}: tar shard {stray[0]}{more} is in no folder "
                          f"of the {len(manifests)} NeMo "
                          "tarred manifests, so no manifest names its rows; give each set "
                          "(manifest and tars) as its own --input")
    if stray:
        own[manifests[0]] += stray
    for manifest, shards in own.items():
        numbers: dict[str | None, str] = {}
        for tar in shards:
            number = shard_number(tar)
            if number is not None and number in numbers:
                raise ConfigError(f"--input {listing.input!r}: {numbers[number]} and {tar} are "
                                  f"both shard {number} of the NeMo tarred set of {manifest}; "
                                  "keep one")
            numbers[number] = tar
    return {m: tuple(t) for m, t in own.items()}


def _nemo_tarred_units(listing: Listing) -> list[IndexUnit]:
    """Per tarred manifest, its tars (``_set_tars``) in parts of ``TARS_PER_UNIT``, one task
    each."""
    manifests = [u for u in listing.files if is_nemo_tarred_manifest(u)]
    owned = _set_tars(listing, manifests)
    units = []
    for manifest in manifests:
        tars = owned[manifest]
        parts = max(1, -(-len(tars) // TARS_PER_UNIT))
        units += [IndexUnit("nemo-tarred", (manifest, *tars), listing.root, (i, parts))
                  for i in range(parts)]
    return units


def _lhotse_units(listing: Listing) -> list[IndexUnit]:
    """One unit per lhotse set: its cuts manifest, else its recordings (+ supervisions).

    A set is the files of one folder whose names agree once the role word is taken out
    (``libri_recordings_dev.jsonl.gz`` and ``libri_supervisions_dev.jsonl.gz``)."""
    sets: dict[str, dict[str, str]] = defaultdict(dict)
    for uri in listing.files:
        role = lhotse_role(uri)
        key = posixpath.join(_folder(uri), posixpath.basename(uri).replace(role, "*", 1).split(".")[0])
        sets[key][role] = uri
    units = []
    for key, roles in sorted(sets.items()):
        if "cuts" in roles:
            units.append(IndexUnit("lhotse", (roles["cuts"],), listing.root))
        elif "recordings" in roles:
            units.append(IndexUnit("lhotse", tuple(roles[r] for r in ("recordings", "supervisions")
                                                   if r in roles), listing.root))
        else:
            raise ConfigError(f"lhotse supervisions {roles['supervisions']} have no recordings "
                              "manifest beside them (the same name with 'recordings'); the audio "
                              "paths are in the recordings")
    return units


SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$")


def common_root(roots: list[str]) -> str:
    """The folder URI every one of ``roots`` lies under (``/data`` for ``/data/a`` and
    ``/data/b``; ``s3://bkt`` for ``s3://bkt/a`` and ``s3://bkt/b``); ``""`` for roots that share no folder
    (different file systems, schemes or buckets: ``s3://a/x`` and ``s3://b/y``)."""
    parts = [SCHEME.match(r).groups() if SCHEME.match(r) else ("", r) for r in roots]
    if len({scheme for scheme, _ in parts}) != 1:
        return ""
    paths = [path.rstrip("/") or "/" for _, path in parts]
    try:
        common = posixpath.commonpath(paths)
    except ValueError:           # absolute and relative paths mixed
        return ""
    return parts[0][0] + common if common else ""   # s3://a/x, s3://b/y: no folder in common


def plan_units(listings: list[Listing]) -> list[IndexUnit]:
    """The index tasks of all inputs, in input order (their order is the order ids are ranked
    in for "the first one wins").

    With one input, derived ids start at that input's root (its folder, or a manifest's own
    folder). With several, they start at the folder all inputs lie under (:func:`common_root`),
    so that ``--input a/ --input b/`` holding ``a/0000.flac`` and ``b/0000.flac`` give ids
    ``a/0000`` and ``b/0000``: two different files never share a derived id. Every unit kind
    reads that folder the same way (``IndexUnit.id_root``); Parquet and Arrow shards get their
    id prefixes here, from all of an input's shards at once (``ids.shard_prefixes``). Ids the
    data gives (an ``id`` column, WebDataset keys, LibriSpeech/Kaldi/lhotse ids) are never
    changed.
    """
    base = ""
    if len(listings) > 1:   # "/" when they share no folder: derived ids are then whole paths
        base = common_root([listing.root for listing in listings]) or "/"
    units: list[IndexUnit] = []
    for listing in listings:
        own = [replace(unit, id_base=base) for unit in _listing_units(listing)]
        shards = [u.uris[0] for u in own if u.kind in SHARD_KINDS]
        prefixes = shard_prefixes(base or listing.root, shards, keep_folders=bool(base))
        units += [replace(u, id_prefix=prefixes[u.uris[0]]) if u.kind in SHARD_KINDS else u
                  for u in own]
    return units


# Index units of one shard whose rows without an id get ``<id_prefix>/<row>``.
SHARD_KINDS = ("parquet", "arrow")


def _listing_units(listing: Listing) -> list[IndexUnit]:
    """The index units of one input, derived ids relative to its root (``plan_units`` moves
    them to the inputs' common folder when several are given)."""
    units: list[IndexUnit] = []
    if listing.format == "audio":
        units += _file_units(listing.files, listing.root)
    elif listing.format == "librispeech":
        units += _librispeech_units(listing)
    elif listing.format == "kaldi":
        units += _kaldi_units(listing)
    elif listing.format == "nemo-tarred":
        units += _nemo_tarred_units(listing)
    elif listing.format == "lhotse":
        units += _lhotse_units(listing)
    elif listing.format == "manifest":
        root = "" if listing.single else listing.root
        units += [IndexUnit("manifest", (uri,), root) for uri in listing.files]
    else:
        units += [IndexUnit(listing.format, (uri,), listing.root) for uri in listing.files]
    return units
