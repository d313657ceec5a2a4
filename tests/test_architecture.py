"""The module graph of sphereviz has no import cycle, counting imports inside functions too;
every import goes to its own layer or a lower one, as README.md's Architecture table says;
the data layer imports no learning, the plots and the gallery no trainer; the configuration
and the recipes load without torch."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sphereviz"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module → the sphereviz modules it imports anywhere in its source (module level, inside
    functions, under TYPE_CHECKING). ``from sphereviz.x import y`` counts as sphereviz.x.y when
    y is a submodule, else as sphereviz.x; relative imports are resolved."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            else:
                continue
            edges |= {target for target in targets if target in files and target != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, …, a], or None (depth-first search, three colours)."""
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}) == ["b", "b2", "b"]


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "sphereviz.config" in graph["sphereviz.train"]  # module level
    assert "sphereviz.data.recordio" in graph["sphereviz.data.sources"]  # inside a function
    assert "sphereviz.data.align" in graph["sphereviz.data"]  # a package's __init__
    assert "sphereviz.losses.a_softmax" in graph["sphereviz.losses"]


def test_no_import_cycle_among_the_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_config_does_not_import_the_trainer():
    code = (
        "import sys, sphereviz.config, sphereviz.runs\n"
        "print(sorted(m for m in sys.modules if m in "
        "('sphereviz.train', 'sphereviz.evaluate', 'sphereviz.figures', 'sphereviz.sweep')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=PACKAGE.parent,
    )  # fmt: skip
    assert result.stdout.strip() == "[]", result.stdout


# ---------------------------------------------------------------------------------------------
# The layers, as README.md's Architecture table states them

README = PACKAGE.parent / "README.md"
UPWARD_IMPORTS = {
    # a config is checked by building its loss once (losses.make_loss, imported in _validate)
    ("sphereviz.config", "sphereviz.losses"),
}
TRAINER = ("sphereviz.train", "sphereviz.sweep")


def readme_layers(text: str) -> list[tuple[str, list[str]]]:
    """(layer, module entries) per row of the README's Architecture table, top to bottom.

    An entry is a backticked name outside parentheses: ``x`` (the module sphereviz.x), ``x/``
    (the package and everything in it) or ``x/y`` (the module sphereviz.x.y)."""
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = []
    table = section[section.index("| layer |") :].split("\n\n", 1)[0]  # the first table only
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("layer", "---") or not line.startswith("|"):
            continue
        body = cells[1]
        while re.search(r"\([^()]*\)", body):
            body = re.sub(r"\([^()]*\)", "", body)
        rows.append((cells[0], re.findall(r"`([A-Za-z_][\w/]*)`", body)))
    return rows


def entry_matches(entry: str, module: str) -> bool:
    if entry == "sphereviz":
        return module == "sphereviz"
    name = "sphereviz." + entry.rstrip("/").replace("/", ".")
    return module == name or (entry.endswith("/") and module.startswith(name + "."))


def layer_of(modules, rows) -> dict[str, int]:
    """module → the index of its README row (the most specific entry that names it)."""
    layers = {}
    for module in modules:
        matches = [
            (len(entry), index)
            for index, (_, entries) in enumerate(rows)
            for entry in entries
            if entry_matches(entry, module)
        ]
        if matches:
            layers[module] = max(matches)[1]
    return layers


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_layer_reader_reads_a_table():
    text = (
        "## Architecture\n\n| layer | modules |\n|---|---|\n"
        "| low | `a` (uses `b`), `p/` |\n| high | `p/q`, `c` |\n\n| x | `d` |\n\n## Next\n"
    )
    rows = readme_layers(text)
    assert rows == [("low", ["a", "p/"]), ("high", ["p/q", "c"])]
    modules = ["sphereviz.a", "sphereviz.p", "sphereviz.p.r", "sphereviz.p.q", "sphereviz.c"]
    assert layer_of(modules, rows) == {
        "sphereviz.a": 0, "sphereviz.p": 0, "sphereviz.p.r": 0, "sphereviz.p.q": 1,
        "sphereviz.c": 1,
    }  # fmt: skip
    assert closure({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}, "a") == {"b", "c"}


def test_the_readme_architecture_names_every_module_and_only_modules():
    graph = import_graph()
    rows = readme_layers(README.read_text(encoding="utf-8"))
    named = [entry for _, entries in rows for entry in entries]
    unknown = [entry for entry in named if not any(entry_matches(entry, m) for m in graph)]
    assert not unknown, f"README's Architecture names modules that do not exist: {unknown}"
    assert len(named) == len(set(named)), "a module is named in two layers"
    missing = sorted(set(graph) - set(layer_of(graph, rows)))
    assert not missing, f"modules missing from README's Architecture table: {missing}"


def test_every_import_goes_to_the_same_layer_or_a_lower_one():
    graph = import_graph()
    rows = readme_layers(README.read_text(encoding="utf-8"))
    layers = layer_of(graph, rows)
    upward = sorted(
        f"{source} ({rows[layers[source]][0]}) → {target} ({rows[layers[target]][0]})"
        for source, targets in graph.items()
        for target in targets
        if layers[target] > layers[source] and (source, target) not in UPWARD_IMPORTS
    )
    assert not upward, "imports into a higher layer:\n" + "\n".join(upward)
    assert all(layers[target] > layers[source] for source, target in UPWARD_IMPORTS)


def test_data_imports_no_learning_and_plots_and_gallery_no_trainer():
    """Transitively, leaving out the one upward import (config's check builds a loss)."""
    graph = import_graph()
    for source, target in UPWARD_IMPORTS:
        graph[source] = graph[source] - {target}
    rows = readme_layers(README.read_text(encoding="utf-8"))
    layers = layer_of(graph, rows)
    learning = [index for index, (name, _) in enumerate(rows) if name == "learning"][0]
    for module in [m for m in graph if m == "sphereviz.datasets" or m.startswith("sphereviz.data")]:
        above = sorted(t for t in closure(graph, module) if layers[t] >= learning)
        assert not above, f"{module} reaches the learning or presentation layer: {above}"
    for module in [m for m in graph if m.startswith("sphereviz.plots") or m == "sphereviz.gallery"]:
        trainer = sorted(set(TRAINER) & closure(graph, module))
        assert not trainer, f"{module} imports the trainer: {trainer}"


@pytest.mark.parametrize(
    "body",
    [
        "import sphereviz.config",
        "import sphereviz.recipes, sphereviz.datasets, sphereviz.gallery",
        "from sphereviz.geometry import metrics; metrics.best_threshold([0.1, 0.9], [0, 1])",
        "from sphereviz.losses.registry import loss_spec; loss_spec('arcface').target(0.5, 0.5)",
    ],
)
def test_the_configuration_and_recipes_load_without_torch(body):
    code = f"import sys\n{body}\nprint('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=PACKAGE.parent,
    )  # fmt: skip
    assert result.stdout.strip() == "False", result.stdout + result.stderr
