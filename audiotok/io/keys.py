"""Key rules of Kaldi tables: no whitespace, unique, sorted in C (byte) order."""

from audiotok.errors import AudiotokError

SORT_HINT = "sort it with: LC_ALL=C sort -k1,1 -u FILE"


def check_key(key: str, where: str) -> str:
    if not key:
        raise AudiotokError(f"{where}: empty key")
    if any(ch.isspace() for ch in key):
        raise AudiotokError(f"{where}: key {key!r} contains whitespace", "Kaldi keys are single tokens; rename the item")
    return key


def c_order(key: str) -> bytes:
    """Sort key matching `LC_ALL=C sort`."""
    return key.encode("utf-8", "surrogateescape")


class KeyOrderChecker:
    """Raises on a repeated key, and, when `sorted_required`, on a key out of C order."""

    def __init__(self, source: str, sorted_required: bool):
        self.source = source
        self.sorted_required = sorted_required
        self.previous: bytes | None = None
        self.seen: set[str] = set()

    def check(self, key: str, where: str) -> None:
        if key in self.seen:
            raise AudiotokError(f"{where}: duplicate key {key!r}", f"keys of {self.source} must be unique")
        self.seen.add(key)
        current = c_order(key)
        if self.sorted_required and self.previous is not None and current < self.previous:
            previous = self.previous.decode("utf-8", "surrogateescape")
            raise AudiotokError(f"{where}: not sorted: key {key!r} comes after {previous!r}", SORT_HINT.replace("FILE", self.source))
        self.previous = current


def safe_file_name(key: str) -> str | None:
    """The key itself when it can name a file inside an output directory, else None."""
    if "/" in key or "\\" in key or "\0" in key or key in (".", "..") or key.startswith("."):
        return None
    return key
