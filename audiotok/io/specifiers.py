"""Kaldi read/write specifiers (`scp:`, `ark:`, `ark,t:`, `ark,scp:A,S`, `-`)."""

from dataclasses import dataclass

from audiotok.errors import UsageError

_FLAGS = {"t", "b", "o", "p", "f", "nf", "s", "cs", "ns"}


@dataclass(frozen=True)
class Specifier:
    ark: str | None = None  # path, or "-" for stdin/stdout
    scp: str | None = None
    text: bool = False

    @property
    def is_stdio(self) -> bool:
        return self.ark == "-"


def looks_like_specifier(spec: str) -> bool:
    head = spec.split(":", 1)[0]
    return ":" in spec and bool(head) and set(head.split(",")) <= (_FLAGS | {"ark", "scp"})


def parse_specifier(spec: str, writing: bool = False) -> Specifier:
    """Parse `ark:x`, `scp:x`, `ark,t:x`, `ark,scp:a,s`; a lone `-` means `ark:-`."""
    if spec == "-":
        return Specifier(ark="-")
    if not looks_like_specifier(spec):
        raise UsageError(
            f"not a Kaldi specifier: {spec!r}",
            "use ark:FILE, ark:-, scp:FILE, ark,t:FILE or ark,scp:FILE.ark,FILE.scp",
        )
    types_part, files_part = spec.split(":", 1)
    types = types_part.split(",")
    kinds = [t for t in types if t in ("ark", "scp")]
    if not kinds or len(set(kinds)) != len(kinds):
        raise UsageError(f"bad specifier {spec!r}: name ark, scp, or both once")
    files = files_part.split(",", 1) if len(kinds) == 2 else [files_part]
    if len(files) != len(kinds) or not all(files):
        raise UsageError(f"bad specifier {spec!r}: {','.join(kinds)} needs {len(kinds)} file name(s)")
    paths = dict(zip(kinds, files, strict=True))
    if writing and "scp" in paths and "ark" not in paths:
        raise UsageError(f"cannot write to {spec!r}: an scp needs an ark to point into", "use ark,scp:FILE.ark,FILE.scp")
    if not writing and len(kinds) == 2:
        raise UsageError(f"cannot read from {spec!r}: read either the ark or the scp")
    if paths.get("scp") == "-":
        raise UsageError(f"bad specifier {spec!r}: an scp written to stdout cannot point into an ark")
    return Specifier(ark=paths.get("ark"), scp=paths.get("scp"), text="t" in types)
