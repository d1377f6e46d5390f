"""check-shard-tokens: does every sample of the shards appear exactly once in the token files?

The samples are listed from the shards themselves, as the readers define them: for a tar
shard, the keys of its members (the member path up to the first dot of the base name; a
key met twice in a shard is one sample), read from the member headers without the data;
for a Parquet shard, its rows' keys. Against them go every complete line of every token
file of the input in the output directory (`{name}_{N}.jsonl` and every task's
`{name}_{J}of{T}_{N}.jsonl`) and every `.skipped.jsonl` record. A sample is tokenized
(one line), skipped (no line, and a record with its reason), missing (neither) or
duplicated (two lines or more). A line of a selected shard naming a key the shard does not
hold is unknown. A damaged shard whose damage a run recorded is accepted: its listed samples
without a line count as skipped ("damaged shard"), and the ones after the damage cannot be
listed by anybody; a damaged shard that no run recorded is an error.

The merge writes the tokenized lines, unchanged, in shard order and then key order: the
same file whatever the number of tasks and processes that made them.
"""

import os
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from audiotok.errors import AudiotokError

SHOWN_KEYS = 3  # keys named in the error line; --list FILE has them all


@dataclass
class CheckResult:
    samples: int = 0
    tokenized: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> samples
    missing: list = field(default_factory=list)  # (shard, key)
    duplicated: list = field(default_factory=list)
    unknown: list = field(default_factory=list)  # lines whose key the shard does not hold
    damaged: list = field(default_factory=list)  # (shard, recorded by a run)
    lines: dict = field(default_factory=dict)  # (shard, key) -> (file, offset) of its line, for the merge: no token is held

    @property
    def complete(self) -> bool:
        return not (self.missing or self.duplicated or self.unknown or any(not recorded for _, recorded in self.damaged))

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items(), key=lambda item: (-item[1], item[0])))
        text = (
            f"{self.samples} samples: {self.tokenized} tokenized, {skipped} skipped{f' ({reasons})' if reasons else ''}, "
            f"{len(self.missing)} missing, {len(self.duplicated)} duplicated"
        )
        if self.damaged:
            text += f"; {len(self.damaged)} damaged shard(s), their samples after the damage cannot be listed"
        return text

    def error(self) -> AudiotokError:
        parts = []
        for what, identities in (("missing", self.missing), ("duplicated", self.duplicated), ("not in their shard", self.unknown)):
            if identities:
                shown = ", ".join(f"{shard}:{key}" for shard, key in identities[:SHOWN_KEYS])
                more = f" and {len(identities) - SHOWN_KEYS} more" if len(identities) > SHOWN_KEYS else ""
                parts.append(f"{len(identities)} {what} ({shown}{more})")
        unrecorded = [shard for shard, recorded in self.damaged if not recorded]
        if unrecorded:
            parts.append(f"{len(unrecorded)} damaged shard(s) no run recorded ({', '.join(unrecorded[:SHOWN_KEYS])})")
        return AudiotokError(
            f"{self.samples} samples: {'; '.join(parts)}",
            "rerun the failed tasks (utils/launch.sh --rerun failed) or the same tokenize-shards command: finished samples are skipped",
        )

    def listing(self) -> str:
        """Every problem, one `what SHARD KEY` line each (--list FILE)."""
        rows = [
            (what, shard, key)
            for what, identities in (("missing", self.missing), ("duplicated", self.duplicated), ("unknown", self.unknown))
            for shard, key in identities
        ]
        rows += [("damaged", shard, "-") for shard, recorded in self.damaged if not recorded]
        return "".join(f"{what} {shard} {key}\n" for what, shard, key in rows)


def shard_keys(shard: str) -> tuple[list[str], str | None]:
    """The sample keys of a shard in their order, and the damage met (None when it reads to its end)."""
    if shard.endswith(".parquet"):
        return _parquet_keys(shard)
    from audiotok.io.tar_shards import split_member_name

    keys: dict[str, None] = {}
    try:
        with tarfile.open(shard, mode="r:*") as archive:  # headers only: the data is skipped
            for member in archive:
                if not member.isdir():
                    keys.setdefault(split_member_name(member.name)[0])
    except (tarfile.TarError, EOFError, OSError) as err:
        return list(keys), str(err) or type(err).__name__
    return list(keys), None


def _parquet_keys(shard: str) -> tuple[list[str], str | None]:
    import pyarrow as pa

    from audiotok.io.parquet_audio import ParquetSpec, iter_rows, shard_layout

    keys: dict[str, None] = {}
    try:
        for row in iter_rows(shard, shard_layout(shard, ParquetSpec(shard))):
            keys.setdefault(row.key)
    except (pa.ArrowException, OSError) as err:
        return list(keys), str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return list(keys), None


def complete_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(byte offset, line) of the lines of path that end with a newline (a torn last line is a killed write: not there)."""
    offset = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if raw.endswith(b"\n"):
                yield offset, raw.decode("utf-8", errors="replace")
            offset += len(raw)


def check_shard_tokens(shards: list[str], out_dir: str, name: str) -> CheckResult:
    import json

    from audiotok.io.jsonl_writer import line_identity, skipped_files, token_files

    names = [os.path.basename(s) for s in shards]
    selected = set(names)
    result = CheckResult()
    seen: Counter = Counter()
    for path in token_files(out_dir, name):
        for offset, line in complete_lines(path):
            identity = line_identity(line)
            if identity is None or identity[0] not in selected:
                continue
            seen[identity] += 1
            result.lines.setdefault(identity, (path, offset))
    reasons: dict = {}
    recorded_damage: set[str] = set()
    for path in skipped_files(out_dir, name):
        for _, line in complete_lines(path):
            try:
                record = json.loads(line)
                shard, key, reason = record["shard"], record["key"], str(record["reason"])
            except (ValueError, KeyError, TypeError):
                continue
            if key is None:
                recorded_damage.add(shard)
            else:
                reasons[(shard, str(key))] = reason  # a rerun that skipped it again says the same
    for shard, shard_name in zip(shards, names, strict=True):
        keys, damage = shard_keys(shard)
        if damage is not None:
            result.damaged.append((shard_name, shard_name in recorded_damage))
        held = set(keys)
        for key in sorted(keys):
            identity = (shard_name, key)
            result.samples += 1
            if seen[identity] > 1:
                result.duplicated.append(identity)
            if seen[identity]:
                result.tokenized += 1
            elif identity in reasons:
                result.skipped[_reason_kind(reasons[identity])] += 1
            elif shard_name in recorded_damage:  # lost with the rest of the shard, as the run said
                result.skipped["damaged shard"] += 1
            else:
                result.missing.append(identity)
        result.unknown += sorted(identity for identity in seen if identity[0] == shard_name and identity[1] not in held)
    return result


def _reason_kind(reason: str) -> str:
    """A reason without its particulars (a decoder's message, a member name), so reasons add up."""
    return reason.split(":", 1)[0].strip()


def write_merged(result: CheckResult, path: str) -> None:
    """The tokenized lines in shard order, then key order; written whole or not at all."""
    from audiotok.io.atomic import install, tmp_path_for

    tmp = tmp_path_for(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sources: dict = {}
    with open(tmp, "wb") as handle:
        for identity in sorted(result.lines):
            token_file, offset = result.lines[identity]
            if token_file not in sources:
                sources[token_file] = open(token_file, "rb")  # noqa: SIM115 - closed below, a handle per token file
            source = sources[token_file]
            source.seek(offset)
            handle.write(source.readline())
        for source in sources.values():
            source.close()
        handle.flush()
        os.fsync(handle.fileno())
    install(tmp, path)
