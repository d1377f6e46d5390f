"""Count the structure a maintainer has to keep in step: item loops, model batching loops,
tokenizer openers, device resolvers, output writers, marker kinds, --device declarations,
import circles and upward import arrows.

    python bench/architecture_counts.py [TREE]     # TREE: a checkout (default: this one)

Each count prints the places it found, so the numbers can be checked by eye. The layers
(lowest first) are those README's "Architecture" section draws; an import from a lower
layer to a higher one is an upward arrow.
"""

import ast
import re
import sys
from pathlib import Path

LAYERS = [
    ("base", ("audiotok", "audiotok.errors", "audiotok.log", "audiotok.device")),
    ("io", ("audiotok.io",)),
    ("engine", ("audiotok.engine", "audiotok.dsp", "audiotok.training")),
    ("models", ("audiotok.models.registry", "audiotok.models.store", "audiotok.models")),
    ("families", ("audiotok.units", "audiotok.bicodec", "audiotok.bsq", "audiotok.taste")),
    ("tokenizers", ("audiotok.tokenizers", "audiotok.models.verify")),
    ("runs", ("audiotok.pipeline", "audiotok.streaming")),
    ("cli", ("audiotok.cli", "audiotok.__main__")),
]


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def modules(tree: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((tree / "audiotok").rglob("*.py")):
        parts = list(path.relative_to(tree).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: set[str], package: str) -> set[str]:
    """audiotok modules `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [node.module])
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def grep(tree: Path, pattern: str, exclude: tuple[str, ...] = ()) -> list[str]:
    hits = []
    for path in sorted((tree / "audiotok").rglob("*.py")):
        rel = str(path.relative_to(tree))
        if any(rel.startswith(e) for e in exclude):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                hits.append(f"{rel}:{number}")
    return hits


def writer_modules(tree: Path) -> list[str]:
    """Modules with a class that writes outputs and marks them done or resumable."""
    found = []
    for path in sorted((tree / "audiotok").rglob("*.py")):
        text = path.read_text()
        if (
            re.search(r"class \w+", text)
            and re.search(r"def (write|append|add)\(self", text)
            and re.search(r"mark_done|\.partial|done_keys|read_done|def repair_tail|\.done\b", text)
        ):
            found.append(str(path.relative_to(tree)))
    return found


def main() -> None:
    tree = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    mods = modules(tree)
    graph = {m: imports(p, set(mods), m if p.name == "__init__.py" else m.rpartition(".")[0]) - {m} for m, p in mods.items()}
    upward = sorted(f"{a} -> {b}" for a, bs in graph.items() for b in bs if layer_of(b) > layer_of(a) and b != "audiotok")
    loops = grep(tree, r"\bTally\(", exclude=("audiotok/engine/", "audiotok/runner.py"))
    counts = {
        "item loops (a Tally made outside the engine)": loops,
        "model batching loops (make_batches called outside the engine)": grep(
            tree, r"\bmake_batches\(", exclude=("audiotok/engine/", "audiotok/units/extract.py")
        ),
        "tokenizer openers (a tokenizer assembled from its parts outside audiotok/tokenizers)": [
            hit
            for hit in grep(
                tree,
                r"^(?!\s*def ).*(backend_from_recipe\(|BiCodecTokenizer\(|S3Onnx\(|S3Torch\()",
                exclude=("audiotok/tokenizers/", "audiotok/pipeline/tokenizers.py"),
            )
        ],
        "device resolvers (a device chosen outside audiotok/device.py)": grep(
            tree, r"def resolve_device|def worker_device|\"cuda\" if .*cuda\.is_available\(\)|if device == \"auto\"", exclude=("audiotok/device.py",)
        ),
        "output writer modules outside io/": [m for m in writer_modules(tree) if not m.startswith("audiotok/io/")],
        "marker writers (a marker file written outside io/markers.py)": grep(
            tree, r"\.write_text\(json|json\.dumps\(.*signature|class DoneMarker|\"\.run\.json\"|\.partial\.json\"", exclude=("audiotok/io/markers.py",)
        ),
        "--device declarations": grep(tree, r"\"--device\""),
        "import circles": [" <-> ".join(c) for c in cycles(graph)],
        "upward import arrows": upward,
    }
    for name, hits in counts.items():
        print(f"{len(hits):4d}  {name}")
        for hit in hits:
            print(f"        {hit}")


if __name__ == "__main__":
    main()
