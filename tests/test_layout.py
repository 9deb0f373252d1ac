"""The code's layout as the README states it: no import circle between the repository's modules, and no module
imports an entry point (a command line) or, among the scripts, another script."""
import ast
import os
import re

from .conftest import REPO

ENTRY_POINTS = {"train", "inference", "test_infer", "export", "multiproc", "hubconf", "preprocess_audio2mel"}
PACKAGES = ("common", "tacotron2", "waveglow", "hifigan", "corpora", "scripts")


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


# the libraries that run a model: they must work in a process that never trains (a server, an exported engine)
INFERENCE_LIBRARIES = ("synthesis", "vocoders", "serving", "exporting", "evaluation", "hubconf", "inference",
                       "test_infer", "serve", "export", "hifigan")


def test_models_kernels_and_inference_never_import_training():
    """Model code, CPU kernels and the inference libraries import nothing of common.training (autocast's dtype
    lives in common.precision, the host-memory setting in common.cpu)."""
    graph = _graph()
    runs_models = [m for m in graph if m.split(".")[0] in ("tacotron2", "waveglow", "hifigan")
                   or m.startswith("common.cpu") or m in INFERENCE_LIBRARIES]
    assert len(runs_models) > 20
    wrong = sorted((m, t) for m in runs_models for t in graph[m] if t.startswith("common.training"))
    assert not wrong, wrong


def test_cpu_kernels_and_training_do_not_import_each_other_both_ways():
    graph = _graph()
    cpu_to_training = {(m, t) for m, ts in graph.items() if m.startswith("common.cpu") for t in ts
                       if t.startswith("common.training")}
    training_to_cpu = {(m, t) for m, ts in graph.items() if m.startswith("common.training") for t in ts
                       if t.startswith("common.cpu")}
    assert not (cpu_to_training and training_to_cpu), (sorted(cpu_to_training), sorted(training_to_cpu))


def test_the_readmes_layout_table_names_every_module():
    """Each module in its folder's row (the deepest folder that has a row of its own: `common/cpu/`, `hifigan/`),
    a top-level module anywhere in the table; a script by its file or its `python -m scripts.NAME` name."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    table = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 1)]
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `"):
            for folder in re.findall(r"`([\w/]+/)`", line.split("|")[1]):
                rows[folder] = line
    missing = []
    for name, path in _modules().items():
        if path.endswith("__init__.py"):
            continue
        parts = os.path.relpath(path, REPO).split(os.sep)
        folders = ["/".join(parts[:i]) + "/" for i in range(len(parts) - 1, 0, -1)]
        row = table if len(parts) == 1 else next((rows[f] for f in folders if f in rows), "")
        stem = parts[-1][:-3]
        if f"{stem}.py" not in row and not (parts[0] == "scripts" and f"`{stem}`" in row):
            missing.append(os.path.relpath(path, REPO))
    assert not missing, missing
