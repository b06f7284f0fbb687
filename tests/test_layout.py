"""The package's layout keeps one home for each decision (DESIGN.md,
"Layout"): read from the source, so a change that breaks it fails here."""
import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = Path(ROOT) / "trainer"
MODULES = {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.glob("*.py"))}
CLIENT_SIDE = {"cli", "submit", "jobs"}           # never inside a container job
CONTAINER_JOBS = ("task", "movie", "training")


def sibling_imports(tree):
    """The trainer modules TREE imports, anywhere in it (lazy ones too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "trainer":
                found |= {a.name for a in node.names}
            elif node.module.startswith("trainer."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names
                      if a.name.startswith("trainer.")}
    return (found & set(MODULES)) - {"__init__"}


GRAPH = {name: sibling_imports(tree) for name, tree in MODULES.items()}


def reachable(start):
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_no_import_cycle_anywhere_in_trainer():
    cycles = sorted(name for name in GRAPH if name in reachable(name))
    assert cycles == []


@pytest.mark.parametrize("job", CONTAINER_JOBS)
def test_the_container_jobs_import_nothing_client_side(job):
    assert reachable(job) & CLIENT_SIDE == set()


def string_constants(tree):
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_bucket_layout_and_the_model_files_are_named_in_bucket_py_only():
    """The folder names and the output suffixes, as literals, live in one module."""
    from trainer import bucket
    names = {bucket.TRAINING, bucket.MODELS, bucket.MOVIES, bucket.JOBS, *bucket.OUTPUTS}
    assert len(bucket.OUTPUTS) >= 6 and len(names) == 4 + len(bucket.OUTPUTS)
    elsewhere = {name: sorted(names & string_constants(tree))
                 for name, tree in MODULES.items() if name != "bucket"}
    # ".json" there is any JSON file of a tub (record_N.json, a key), not the card.
    assert {k: v for k, v in elsewhere.items() if v} == {"archive": [".json"],
                                                         "tubs": [".json"]}
    assert names <= string_constants(MODULES["bucket"])


def environment_reads(tree):
    """Names of the os.environ / os.getenv calls and subscripts in TREE."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            found.append(node.lineno)
    return found


def test_only_settings_reads_the_environment():
    """Besides settings.py: errors.py reads the script's name and usage (what
    lib/common.sh hands over), donkey.py sets TensorFlow's and DonkeyCar's
    log levels before they load, tracking.py gives wandb the key it read."""
    allowed = {"settings", "errors", "donkey", "tracking"}
    readers = {name for name, tree in MODULES.items() if environment_reads(tree)}
    assert readers <= allowed
    assert "settings" in readers


def lazy_sibling_imports(tree):
    """Sibling imports inside functions: each is a start-up cost hidden."""
    found = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "trainer"):
                    found.append(f"{func.name}:{node.lineno}")
    return found


# Lazy on purpose: the archive verbs need DonkeyCar's packages (numpy,
# Pillow), which the light install on a car may lack (see test_light_install).
LAZY_ON_PURPOSE = {"cli": ["cmd_archive", "cmd_deflate"], "car": ["_run_pilot"]}


def test_sibling_modules_are_imported_at_the_top():
    lazy = {name: lazy_sibling_imports(tree) for name, tree in MODULES.items()}
    lazy = {name: [where for where in found
                   if where.split(":")[0] not in LAZY_ON_PURPOSE.get(name, [])]
            for name, found in lazy.items()}
    assert {k: v for k, v in lazy.items() if v} == {}
