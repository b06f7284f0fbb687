"""The Colab route (notebooks/train_on_colab.ipynb), executed end to end in a
fresh Jupyter kernel (nbclient), as Colab would run it, on this machine's CPU.

There is no Colab here, so what stands in for it is as small as it can be:
- a fresh venv, the kernel's, into which the notebook itself pip-installs a
  wheel built from this checkout (--no-deps --no-index: no network); a .pth
  file puts the test venv's packages (DonkeyCar, TensorFlow, ipykernel)
  behind it, so nothing heavy is installed again and the shared venv is
  never touched;
- google.colab as three functions (tests/fake_colab): files.upload() gives
  the archive, files.download() keeps what the notebook hands back,
  auth.authenticate_user() notes the sign-in (the bucket is the GCS
  emulator); and, for one test, a Python that says it is 3.10;
- REQUIRE_GPU = False (the parameter that relaxes the GPU check).
A run on real Colab is a manual check (docs/car.md says when).
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from helpers import ROOT, SCRIPTS, script_env, write_synth_tub

from trainer.core.bucket import OUTPUTS

pytestmark = pytest.mark.e2e

NOTEBOOK = os.path.join(ROOT, "notebooks", "train_on_colab.ipynb")
FAKE_COLAB = os.path.join(ROOT, "tests", "fake_colab")
KERNEL = "robocar-colab-test"


@pytest.fixture(scope="session")
def colab(tmp_path_factory, car_template):
    """A kernel whose Python is a fresh venv, a wheel of this checkout, an
    archive to upload: (kernel env, wheel, archive), made once."""
    base = tmp_path_factory.mktemp("colab")
    source = base / "source"                # the wheel is built off the checkout
    shutil.copytree(os.path.join(ROOT, "trainer"), source / "trainer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "setup.py"), source)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", "-w", str(base / "dist"), str(source)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    [wheel] = (base / "dist").glob("robocar_trainer-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    # A plain path line: the test venv's own .pth files (its editable toolkit) stay out.
    with open(os.path.join(purelib, "test-venv.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    spec = base / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python"}))
    car = base / "mycar"
    shutil.copytree(car_template, car, symlinks=True)
    for s in SCRIPTS:
        os.symlink(os.path.join(ROOT, s), car / s)
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=200)
    r = subprocess.run(["./make_tub_archive.sh"], cwd=car, env=script_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {"jupyter": str(base / "jupyter"), "python": str(python), "wheel": str(wheel),
            "archive": str(car / "wip.tgz")}


def execute(colab, tmp_path, monkeypatch, env=None, **parameters):
    """The notebook with PARAMETERS (a cell after its parameters cell, as
    papermill does), run top to bottom in /content-like TMP_PATH/content:
    (the notebook as executed, its error or None, the downloads folder)."""
    import nbclient
    import nbformat
    content, downloads = tmp_path / "content", tmp_path / "downloads"
    content.mkdir()
    downloads.mkdir()
    env = {k: v for k, v in (env or script_env()).items()
           if k not in ("PYTHONPATH", "TRAINER_PYTHON")}
    env.update(JUPYTER_PATH=colab["jupyter"], PYTHONPATH=FAKE_COLAB,
               FAKE_COLAB_UPLOAD=colab["archive"], FAKE_COLAB_DOWNLOADS=str(downloads),
               FAKE_COLAB_AUTH=str(tmp_path / "auth"))
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [at] = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        "\n".join(f"{k} = {v!r}" for k, v in parameters.items())))
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=900,
                                     resources={"metadata": {"path": str(content)}})
    try:
        client.execute()
        error = None
    except nbclient.exceptions.CellExecutionError as e:
        error = e
    return nb, error, downloads


def outputs(nb, kind):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == kind]


def shown_text(nb):
    out = []
    for o in outputs(nb, "stream") + outputs(nb, "display_data"):
        out.append(o.get("text") or o.get("data", {}).get("text/markdown", ""))
    return "".join(out)


def test_the_notebook_trains_and_gives_the_model_set_and_its_verdict(colab, tmp_path,
                                                                      monkeypatch):
    nb, error, downloads = execute(colab, tmp_path, monkeypatch, TOOLKIT=colab["wheel"],
                                   PIP_ARGS=["--no-deps", "--no-index"], REQUIRE_GPU=False,
                                   SETTINGS=["MAX_EPOCHS=2"])
    assert error is None, str(error)[-3000:]
    text = shown_text(nb)
    # the toolkit the kernel ran is the wheel, installed by the notebook itself
    assert "DonkeyCar 5.3 for Python 3.11" in text
    site = subprocess.run([colab["python"], "-c", "import trainer; print(trainer.__file__)"],
                          capture_output=True, text=True, cwd=tmp_path).stdout
    assert site.startswith(os.path.dirname(os.path.dirname(colab["python"]))), site
    # the verdict, inline, as words
    assert "**verdict: pilot-wip is" in text and "a constant guess**" in text
    assert "steering error" in text and "unseen frames" in text
    # the plots, inline: loss and predictions
    pictures = [o for o in outputs(nb, "display_data") if "image/png" in o.get("data", {})]
    assert len(pictures) == 2
    # the model set, handed back as one download
    [zipped] = downloads.iterdir()
    assert zipped.name == "pilot-wip.zip"
    with zipfile.ZipFile(zipped) as z:
        assert sorted(z.namelist()) == sorted(f"pilot-wip{s}" for s in OUTPUTS)
        card = json.loads(z.read("pilot-wip.json"))
    assert card["versions"]["donkeycar_generation"] == "5.3" and card["epochs"] == 2
    assert card["verdict"]["frames"] > 0
    assert error is None


def test_from_the_bucket_back_into_the_bucket(colab, tmp_path, monkeypatch, gcs):
    """ARCHIVE in the bucket (the GCS emulator), BUCKET set: the set is
    published to the bucket's models/ as a cloud job's, and downloaded too."""
    with open(colab["archive"], "rb") as f:
        gcs.put("training/wip.tgz", f.read())
    nb, error, downloads = execute(colab, tmp_path, monkeypatch, env=gcs.env,
                                   TOOLKIT=colab["wheel"], PIP_ARGS=["--no-deps", "--no-index"],
                                   REQUIRE_GPU=False, SETTINGS=["MAX_EPOCHS=1"],
                                   ARCHIVE=f"gs://{gcs.bucket.name}/training/wip.tgz",
                                   BUCKET=gcs.bucket.name)
    assert error is None, str(error)[-3000:]
    assert (tmp_path / "auth").read_text() == "signed in\n"        # Colab's sign-in, once
    assert sorted(gcs.names("models/")) == sorted(f"models/pilot-wip{s}" for s in OUTPUTS)
    card = json.loads(gcs.read("models/pilot-wip.json"))
    with zipfile.ZipFile(downloads / "pilot-wip.zip") as z:
        assert json.loads(z.read("pilot-wip.json")) == card
    assert card["archives"][0]["uri"] == f"gs://{gcs.bucket.name}/training/wip.tgz"
    assert "on the car, ./download_models.sh -m pilot-wip" in shown_text(nb)


def test_on_a_python_no_donkeycar_takes_it_stops_in_one_line(colab, tmp_path, monkeypatch):
    """Colab's Python 3.10 (its Python answers so: tests/fake_colab/sitecustomize.py)."""
    nb, error, downloads = execute(colab, tmp_path, monkeypatch,
                                   env=script_env(FAKE_PYTHON_VERSION="3.10.12"),
                                   TOOLKIT=colab["wheel"], PIP_ARGS=["--no-deps", "--no-index"],
                                   REQUIRE_GPU=False)
    assert error is not None
    [failed] = outputs(nb, "error")
    assert (failed["ename"], failed["evalue"]) == ("Stop", (
        "Colab's Python 3.10.12 matches no DonkeyCar generation the toolkit trains for "
        "(DonkeyCar 5.3: Python 3.11; DonkeyCar 5.4: Python 3.12): pick a Colab runtime "
        "version with one of them (Runtime > Change runtime type), then run all again"))
    assert len(failed["traceback"]) == 1 and list(downloads.iterdir()) == []


def test_without_a_gpu_it_stops_in_one_line_before_installing(colab, tmp_path, monkeypatch):
    """This machine has no GPU: with the check on, as on a Colab CPU runtime."""
    nb, error, downloads = execute(colab, tmp_path, monkeypatch, TOOLKIT=colab["wheel"],
                                   PIP_ARGS=["--no-deps", "--no-index"])
    assert error is not None
    [failed] = outputs(nb, "error")
    assert failed["ename"] == "Stop"
    assert failed["evalue"] == (
        "this Colab runtime has no GPU: Runtime > Change runtime type > T4 GPU, then "
        "Runtime > Run all (or set REQUIRE_GPU = False to train on the CPU, slowly)")
    assert len(failed["traceback"]) == 1                  # one line, no traceback
    assert "pip" not in shown_text(nb) and list(downloads.iterdir()) == []
