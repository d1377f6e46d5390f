"""How full memory is, for the workers' memory guard (Linux /proc and cgroups; no psutil).

The share that matters is the one the OOM killer acts on: the container's cgroup
limit when there is one, else the machine's RAM, with reclaimable page cache
counted as free (MemAvailable).
"""

import ctypes
import gc
import os
from pathlib import Path


def _cgroup_share() -> float | None:
    """used / limit of this process's cgroup (v2 or v1); None when unlimited or unknown."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit_text = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 1 << 60:
            return None
        return usage / int(limit_text)
    return None


def _ram_share() -> float:
    fields = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            fields[name] = int(value.split()[0])
    total = fields["MemTotal"]
    available = fields.get("MemAvailable", fields.get("MemFree", 0))
    return 1.0 - available / total


def memory_share() -> float:
    """The share of memory in use (0..1), the larger of the cgroup's and the machine's."""
    try:
        ram = _ram_share()
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        ram = 0.0
    cgroup = _cgroup_share()
    return max(ram, cgroup or 0.0)


def process_rss() -> int:
    """Resident bytes of this process."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def free_caches() -> None:
    """Give back what can be given back: Python garbage, CUDA's cached blocks, malloc's free pages."""
    gc.collect()
    import sys

    torch = sys.modules.get("torch")  # only when the tokenizer uses torch: never import it here
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
