"""The package's layout shows the architecture (docs/architecture.md): four
parts, core under job and car, client on top, no arrow back up. Read from
the source, so a change that breaks a rule fails here."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = Path(ROOT) / "trainer"
PARTS = ("core", "job", "car", "client")


def _name(path):
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(rel.parts)


MODULES = {_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}
# What each part may import besides itself: core nothing, job and car only
# core (the car none of the job's internals: the pilot runner both use is
# core's), the client anything. The entry points trainer.task and
# trainer.movie are the jobs'; `python -m trainer` starts any script's module
# by name, so it imports core alone.
MAY_IMPORT = {"core": set(), "job": {"core"}, "car": {"core"},
              "client": {"core", "job", "car"}, "top": {"core", "job"}}


def part(module):
    head = module.split(".")[0]
    return head if head in PARTS else "top"


def _resolve(dotted):
    """The module of ours a dotted import names, or None."""
    name = dotted[len("trainer."):] if dotted.startswith("trainer.") else None
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(tree, lazy=True):
    """The trainer modules TREE imports (with LAZY, inside functions too)."""
    nodes = ast.walk(tree) if lazy else tree.body
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "trainer"):
            for alias in node.names:
                found.add(_resolve(f"{node.module}.{alias.name}")
                          or _resolve(node.module))
        elif isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names}
    return found - {None, "__init__"}


GRAPH = {name: imports(tree) for name, tree in MODULES.items()}


def reachable(start, graph=GRAPH):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_four_parts_are_folders_of_the_package():
    assert {part(m) for m in MODULES} == {*PARTS, "top"}
    assert sorted(m for m in MODULES if part(m) == "top") == [
        "__init__", "__main__", "movie", "task"]


def test_no_import_cycle_anywhere_in_trainer():
    cycles = sorted(name for name in GRAPH if name in reachable(name))
    assert cycles == []


def test_no_arrow_goes_up_or_across():
    """core imports no other part; job and car only core; nothing imports
    the client."""
    wrong = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                   if part(b) != part(a) and part(b) not in MAY_IMPORT[part(a)])
    assert wrong == []


def _module_level_heavy(tree):
    heavy = ("tensorflow", "keras", "tf_keras", "donkeycar", "matplotlib", "onnx",
             "tf2onnx", "wandb", "numpy", "google", "googleapiclient")
    found = []
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        found += [n for n in names if n.split(".")[0] in heavy]
    return found


def test_the_car_imports_no_tensorflow_when_it_loads():
    """Not at the top of car/ nor of any module it reaches at load time (a
    Raspberry Pi runs DonkeyCar without TensorFlow), checked in the source
    and by importing it."""
    top = {name: imports(tree, lazy=False) for name, tree in MODULES.items()}
    loaded = {m for c in MODULES if part(c) == "car" for m in reachable(c, top) | {c}}
    heavy = {m: _module_level_heavy(MODULES[m]) for m in sorted(loaded)}
    assert {m: h for m, h in heavy.items() if h} == {}
    code = ("import sys, trainer.car.check, trainer.client.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'matplotlib', 'donkeycar')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_light_installs_scripts_load_without_numpy_or_pillow():
    """The bucket, cloud and download scripts run on the car's light install
    (errors.LIGHT): the verbs' module loads none of DonkeyCar's packages."""
    code = ("import sys, trainer.client.cli; print(sorted({m.split('.')[0] for m in "
            "sys.modules} & {'numpy', 'PIL', 'donkeycar', 'cv2'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_training_job_starts_without_matplotlib():
    """import trainer.task stays light: matplotlib loads when a plot is drawn."""
    code = "import sys, trainer.task; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


def _parameters(func):
    a = func.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n not in ("self", "cls")] + \
        [x for x in (a.vararg, a.kwarg) if x]


def test_no_function_in_the_job_path_takes_more_than_six_parameters():
    """The job passes its plan (trainer/job/plan.py), not pieces of it."""
    wide = sorted(f"{name}.{f.name}: {len(_parameters(f))}"
                  for name, tree in MODULES.items() if part(name) == "job"
                  for f in ast.walk(tree)
                  if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and len(_parameters(f)) > 6)
    assert wide == []


def string_constants(tree):
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_bucket_layout_and_the_model_files_are_named_in_bucket_py_only():
    """The folder names and the output suffixes, as literals, live in one module."""
    from trainer.core import bucket
    names = {bucket.TRAINING, bucket.MODELS, bucket.MOVIES, bucket.JOBS, *bucket.OUTPUTS}
    assert len(bucket.OUTPUTS) >= 6 and len(names) == 4 + len(bucket.OUTPUTS)
    elsewhere = {name: sorted(names & string_constants(tree))
                 for name, tree in MODULES.items() if name != "core.bucket"}
    # ".json" there is any JSON file of a tub (record_N.json, a key), not the card.
    assert {k: v for k, v in elsewhere.items() if v} == {"core.archive": [".json"],
                                                         "core.tubs": [".json"]}
    assert names <= string_constants(MODULES["core.bucket"])


def environment_uses(tree):
    """Lines of the os.environ / os.getenv uses in TREE."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
            and isinstance(node.value, ast.Name) and node.value.id == "os"]


def test_only_settings_reads_the_environment():
    """Besides settings.py, three modules write it, never read it: donkey.py sets
    TensorFlow's and DonkeyCar's log levels before they load, tracking.py
    gives wandb the key it read, scratch.py points TMPDIR at the run's own."""
    users = {name for name, tree in MODULES.items() if environment_uses(tree)}
    assert users <= {"core.settings", "core.donkey", "job.tracking", "core.scratch"}
    assert "core.settings" in users


def lazy_imports(tree):
    """Sibling imports inside functions: each is a start-up cost hidden."""
    return [f"{func.name}:{node.lineno}" for func in ast.walk(tree)
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(func)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trainer")]


# Lazy on purpose: the archive verbs and drive.sh need DonkeyCar's packages
# (numpy, Pillow), which the light install on a car may lack (see
# test_light_install and the test below).
LAZY_ON_PURPOSE = {"client.cli": ["cmd_archive", "cmd_deflate", "cmd_drive"]}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_sibling_modules_are_imported_at_the_top(name):
    lazy = [where for where in lazy_imports(MODULES[name])
            if where.split(":")[0] not in LAZY_ON_PURPOSE.get(name, [])]
    assert lazy == []
