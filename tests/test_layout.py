"""The code's layout as the README states it: no import circle between the repository's modules, and no module
imports an entry point (a command line) or, among the scripts, another script."""
import ast
import os

from .conftest import REPO

ENTRY_POINTS = {"train", "inference", "test_infer", "export", "multiproc", "hubconf", "preprocess_audio2mel"}
PACKAGES = ("common", "tacotron2", "waveglow", "corpora", "scripts")


def _modules():
    """{dotted name: path} of every module outside tests/ and the virtual environment."""
    found = {}
    for name in os.listdir(REPO):
        if name.endswith(".py"):
            found[name[:-3]] = os.path.join(REPO, name)
    for package in PACKAGES:
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(root, f), REPO)[:-3].replace(os.sep, ".")
                    found[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(root, f)
    return found


def _imports(path, name, modules):
    """The repository modules `path` imports, anywhere in it (function-level imports too)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([p for p in parts if p] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph():
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def test_no_module_imports_an_entry_point_and_no_script_another_script():
    graph = _graph()
    wrong = sorted((m, t) for m, targets in graph.items() for t in targets
                   if t in ENTRY_POINTS or (m.startswith("scripts.") and t.startswith("scripts.")
                                            and t != "scripts"))
    assert wrong == [], wrong


def test_no_import_circle():
    graph = _graph()
    state, circles = {}, []

    def visit(node, path):
        state[node] = "open"
        for t in sorted(graph.get(node, ())):
            if state.get(t) == "open":
                circles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == [], circles
