"""build_image.sh, cloudbuild.yaml and the Dockerfile, checked without Docker
(none runs here): the gcloud command it runs for each DonkeyCar generation,
the build Cloud Build would run, what gcloud would upload, and that the
image installs the toolkit from setup.py at the generation the car runs;
build_image.sh's hardening rows (tests/hardening.py) at the end."""
import ast
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from discovery_schema import check
from hardening import Row, row_ids
from helpers import ROOT, one_line_error, script_env
from packaging.requirements import Requirement

from trainer.core.cloud import discovery_document
from trainer.core.generations import GENERATIONS, local

GENERATION = local()

IMAGE = "europe-west1-docker.pkg.dev/my-project/robocar/trainer"
CONFIG = f"{ROOT}/cloudbuild.yaml"


def dockerfile():
    with open(f"{ROOT}/Dockerfile") as f:
        return f.read()


def printed(run, *flags, env):
    r = run("build_image.sh", "-n", *flags, env=env)
    assert r.returncode == 0, r.stderr
    return shlex.split(r.stdout)


@pytest.mark.parametrize("flags,generation", [([], GENERATION), (["-d", "5.3"], "5.3"),
                                              (["-d", "5.4"], "5.4")])
def test_n_prints_the_cloud_build_command_of_the_generation(run, flags, generation):
    """-d picks the Python (so the DonkeyCar) and the tag; without it, the
    generation of the DonkeyCar installed here."""
    command = printed(run, "-i", IMAGE + ":v1", *flags,
                      env=script_env(GOOGLE_CLOUD_PROJECT="proj-1"))
    python = GENERATIONS[generation].python
    assert command == [
        "gcloud", "builds", "submit", ROOT, "--config", CONFIG, "--substitutions",
        f"_IMAGE={IMAGE}:dk{generation},_PYTHON={python},_DONKEYCAR={generation}",
        "--project", "proj-1"]
    env = script_env(TRAINER_IMAGE=IMAGE)
    env.pop("GOOGLE_CLOUD_PROJECT", None)
    command = printed(run, *flags, env=env)           # -i defaults to $TRAINER_IMAGE
    assert command[-1].startswith(f"_IMAGE={IMAGE}:dk{generation},")


def substituted(substitutions):
    """cloudbuild.yaml as Cloud Build runs it with SUBSTITUTIONS ('_A=x,_B=y'),
    after checking that they match the config's own exactly: Cloud Build
    refuses a build with a substitution the config does not use, and leaves
    a used one without a value empty."""
    text = open(CONFIG).read()
    given = dict(pair.split("=", 1) for pair in substitutions.split(","))
    used = set(re.findall(r"\$\{?(_[A-Z0-9_]+)", text))
    assert used == set(given), (used, given)
    for key, value in given.items():
        text = text.replace("${%s}" % key, value).replace("$" + key, value)
    return yaml.safe_load(text)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_cloud_build_builds_the_dockerfile_for_the_generation_and_pushes_its_tag(
        run, generation):
    command = printed(run, "-d", generation, "-i", IMAGE, env=script_env())
    config = substituted(command[command.index("--substitutions") + 1])
    # a Build as the Cloud Build API takes it (gcloud sends the file as one)
    assert check(discovery_document("cloudbuild", "v1"), "Build", config) == []
    [step] = config["steps"]
    assert step["name"] == "gcr.io/cloud-builders/docker"
    tagged = f"{IMAGE}:dk{generation}"
    assert step["args"] == ["build", f"--build-arg=PYTHON={GENERATIONS[generation].python}",
                            f"--build-arg=DONKEYCAR={generation}", f"--tag={tagged}", "."]
    assert config["images"] == [tagged]
    assert int(config["timeout"].rstrip("s")) >= 3600     # TF with CUDA takes a while


def test_gcloud_itself_reads_cloudbuild_yaml_as_a_build_config(run, tmp_path):
    """The printed command, run with no account: gcloud parses the config
    before it asks for credentials, so it gets as far as the login."""
    command = printed(run, "-d", "5.4", "-i", IMAGE, env=script_env())
    env = script_env(CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), CLOUDSDK_CORE_PROJECT="proj-1")
    broken = tmp_path / "broken.yaml"           # first: the check sees a bad config
    broken.write_text(open(CONFIG).read().replace("  - name:", "  - nmae:"))
    for config, parsed in ((str(broken), False), (CONFIG, True)):
        command[command.index("--config") + 1] = config
        r = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode != 0
        assert ("as build config" not in r.stderr) == parsed, r.stderr
        assert ("You do not currently have an active account" in r.stderr) == parsed, \
            r.stderr


@pytest.mark.parametrize("flags,says", [
    (["-d", "5.5"], "-d 5.5: not a DonkeyCar generation the toolkit builds for: "
                    "use -d 5.3 or -d 5.4"),
    (["-i", IMAGE + "@sha256:" + "0" * 64], "names one image by its digest"),
    (["-i", "my image"], "-i my image is not an image"),
])
def test_bad_values_are_one_line(run, flags, says):
    r = run("build_image.sh", "-n", *flags, env=script_env())
    assert r.returncode == 1 and r.stdout == ""
    assert says in one_line_error(r)


def test_no_image_is_one_line_naming_the_variable(run):
    env = script_env()
    env.pop("TRAINER_IMAGE", None)
    r = run("build_image.sh", "-n", env=env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "build_image.sh: TRAINER_IMAGE is not set: export TRAINER_IMAGE=europe-west1-"
        "docker.pkg.dev/my-project/robocar/trainer, or pass -i IMAGE_URI")


def test_cloud_build_gets_the_dockerfile_and_the_package_only(tmp_path):
    """What `gcloud builds submit` would upload, asked of gcloud itself."""
    r = subprocess.run(["gcloud", "meta", "list-files-for-upload", ROOT],
                       env=script_env(CLOUDSDK_CONFIG=str(tmp_path)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    files = set(r.stdout.split())
    assert {"Dockerfile", "setup.py", "trainer/__init__.py", "trainer/task.py",
            "trainer/job/training.py"} <= files
    leaked = [f for f in files if f.startswith((".venv", "tests/", ".git/", "bench/"))
              or "__pycache__" in f or f.endswith((".tgz", ".h5"))]
    assert leaked == []


def setup_requires(extra=None):
    """install_requires of setup.py (or the EXTRA's list), read without running it."""
    tree = ast.parse(open(f"{ROOT}/setup.py").read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    key = "extras_require" if extra else "install_requires"
    [kw] = [k for k in call.keywords if k.arg == key]
    value = ast.literal_eval(kw.value)
    return [Requirement(r) for r in (value[extra] if extra else value)]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_the_image_installs_the_toolkit_from_setup_py_for_each_generation(generation):
    """The cloud trains with the DonkeyCar and TensorFlow a car of that
    generation runs: the build argument PYTHON picks both through markers."""
    text = dockerfile()
    arg = re.search(r"^ARG PYTHON=(\d+\.\d+)\n(?:#.*\n)*FROM python:\$\{PYTHON\}-[\w.-]+$",
                    text, re.M)
    assert arg, "the image starts from the official python image of the build argument"
    assert re.search(r"^ARG DONKEYCAR=(\S+)$", text, re.M).group(1) == "5.3"
    assert arg.group(1) == GENERATIONS["5.3"].python      # a bare `docker build`: 5.3
    assert re.search(r"^COPY setup\.py ", text, re.M)
    assert re.search(r"^COPY trainer/ trainer/$", text, re.M)
    # The dependencies, pinned by the generation's lock, in a layer before the
    # toolkit's own code; the toolkit itself after COPY trainer/, no deps.
    install = re.search(r"&& pip install (.*?)[\s\\]*&&", text, re.M | re.S).group(1)
    packages = shlex.split(install.replace("\\\n", " "))
    assert packages[:2] == ["-c", "locks/dk${DONKEYCAR}.txt"]
    assert (Path(ROOT) / "locks" / f"dk{generation}.txt").is_file()
    packages = packages[2:]
    # setup.py is the one list of dependencies: its train extra, and wandb so a
    # job tracks its run when submit_cloud_train.sh passes WANDB_PROJECT
    assert packages[0] == ".[train,wandb]"
    assert text.index("COPY trainer/ trainer/") < text.index("RUN pip install --no-deps .")
    assert text.index(".[train,wandb]") < text.index("COPY trainer/ trainer/")
    python = GENERATIONS[generation].python
    marker_env = {"python_version": python, "python_full_version": python + ".0"}
    extra = [r for r in map(Requirement, packages[1:])
             if r.marker is None or r.marker.evaluate(marker_env)]
    assert [(r.name, r.extras) for r in extra] == [("tensorflow", {"and-cuda"})]
    [donkey] = [r for r in setup_requires("train") if r.name == "donkeycar"
                and (r.marker is None or r.marker.evaluate(marker_env))]
    assert str(donkey.specifier) == f"=={generation}.*", donkey
    assert str(extra[0].specifier) == f"=={GENERATIONS[generation].tensorflow}"
    if generation == GENERATION:                       # and DonkeyCar's own pin agrees
        from importlib.metadata import requires
        [pinned] = [Requirement(r) for r in requires("donkeycar")
                    if r.startswith("tensorflow") and 'extra == "pc"' in r]
        assert pinned.specifier == extra[0].specifier
    # the build fails unless the DonkeyCar installed is the one the tag promises
    assert '"$generation" != "$DONKEYCAR"' in text and "exit 1" in text
    # the job states its command; the image's own default only prints the help
    assert re.search(r'^CMD \["python", "-m", "trainer.task", "--help"\]$', text, re.M)


# -- hardening rows (tests/hardening.py) ---------------------------------------------

ROWS = [
    Row("image:no-TRAINER_IMAGE", None, ("build_image.sh",), 1,
        r"TRAINER_IMAGE is not set: export TRAINER_IMAGE=europe-west1-docker\.pkg\.dev/"
        r"my-project/robocar/trainer, or pass -i IMAGE_URI$"),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
