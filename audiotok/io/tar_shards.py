"""Tar shards in the WebDataset layout (`NAME.flac` + `NAME.json` per sample) as a source.

Members are read as streams and never extracted, so names like `../x` can
do no harm; links are never followed (the sample holding one is a named skip). A sample is the run of consecutive members sharing a key: the
member path up to the first dot of its base name (WebDataset's rule).
"""

import json
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from audiotok.io.audio import AUDIO_EXTENSIONS

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 2 << 30  # a sample member above 2 GiB is corrupt, not audio


@dataclass
class ShardSample:
    key: str
    shard: str
    audio_name: str | None = None
    audio: bytes | None = None
    metadata: dict = field(default_factory=dict)
    metadata_name: str | None = None  # the JSON member, when the sample has one
    problems: list[str] = field(default_factory=list)


def split_member_name(name: str) -> tuple[str, str]:
    """`dir/abc.def.flac` -> (`dir/abc`, `def.flac`)."""
    directory, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    key = f"{directory}/{stem}" if directory else stem
    return key, ext.lower() if dot else ""


def _audio_extension(ext: str) -> bool:
    return any(ext == e[1:] or ext.endswith(e) for e in AUDIO_EXTENSIONS)


def iter_shard(path: str) -> Iterator[ShardSample]:
    """Yield the samples of one shard; a truncated or corrupt tar raises tarfile.TarError after the good ones."""
    current: ShardSample | None = None
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            if member.isdir():
                continue
            key, ext = split_member_name(member.name)
            if current is not None and key != current.key:
                yield current
                current = None
            if current is None:
                current = ShardSample(key=key, shard=path)
            if not member.isfile():  # a link is never followed (it could point anywhere): the sample is a named skip
                what = f"a link to {member.linkname}" if member.issym() or member.islnk() else "not a regular file"
                current.problems.append(f"member {member.name} is {what}")
                continue
            if member.size > MAX_MEMBER_BYTES:
                current.problems.append(f"member {member.name} is {member.size} bytes")
                continue
            if _audio_extension(ext):
                if current.audio is not None:
                    current.problems.append(f"two audio members ({current.audio_name}, {member.name})")
                    continue
                handle = archive.extractfile(member)
                current.audio = handle.read() if handle else b""
                current.audio_name = member.name
            elif ext == "json" or ext.endswith(".json"):
                handle = archive.extractfile(member)
                current.metadata_name = member.name
                try:
                    current.metadata = json.loads(handle.read().decode("utf-8")) if handle else {}
                    if not isinstance(current.metadata, dict):
                        raise ValueError("not a JSON object")
                except (ValueError, UnicodeDecodeError) as err:
                    current.metadata = {}
                    current.problems.append(f"bad JSON in {member.name}: {err}")
            elif ext in ("txt", "text") and "text" not in current.metadata:
                handle = archive.extractfile(member)
                current.metadata.setdefault("text", handle.read().decode("utf-8", "replace").strip() if handle else "")
    if current is not None:
        yield current


def count_samples(path: str) -> int:
    """Samples in a shard, from its member headers only (data is skipped); what a damaged
    shard holds before the damage."""
    keys = set()  # a key met twice in a shard is one sample, as the readers make it
    try:
        with tarfile.open(path, mode="r:*") as archive:
            keys.update(split_member_name(member.name)[0] for member in archive if not member.isdir())
    except (tarfile.TarError, EOFError, OSError):
        pass
    return len(keys)
