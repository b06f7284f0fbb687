"""Optional W&B tracking: WANDB_PROJECT=p ./local_train.sh leaves a run with
val_loss per epoch, the archive as a `dataset` artifact (a reference, never a
copy), the model files and card as a `model` artifact, and a card naming the
run. W&B runs offline here (WANDB_MODE=offline), into temporary folders; the
run read is the session's training (tests/trained.py: `local_train.sh -c
MAX_EPOCHS=4` with WANDB_PROJECT=p)."""
import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from discovery_schema import check
from trained import EPOCHS
from helpers import ROOT, one_line_error, script_env, wandb_env
from wandb_records import items, of_kind, read_run

from trainer.core.bucket import OUTPUTS
from trainer.core.cloud import discovery_document

KEY = "0123456789abcdef0123456789abcdef01234567"      # stands for a W&B API key


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def md5_b64(path):
    """W&B's digest of a file."""
    return base64.b64encode(hashlib.md5(open(path, "rb").read()).digest()).decode()


def test_the_run_has_the_config_and_val_loss_for_every_epoch(trained):
    car, run_dir = trained.car, trained.run_dir
    records = read_run(run_dir)
    [run] = of_kind(records, "run")
    assert run.project == "p" and run.display_name == "pilot-wip"
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["epochs"] == EPOCHS
    history = sorted((h.step.num, items(h.item)) for h in of_kind(records, "history"))
    assert [step for step, _ in history] == list(range(EPOCHS))
    for step, row in history:
        assert row["epoch"] == step + 1
        assert row["val_loss"] == pytest.approx(card["history"]["val_loss"][step])
        assert row["loss"] == pytest.approx(card["history"]["loss"][step])
    config = {}
    for c in of_kind(records, "config"):
        config.update(items(c.update))
    assert config["MAX_EPOCHS"] == EPOCHS and config["model_type"] == "linear"
    summary = {}
    for s in of_kind(records, "summary"):
        summary.update(items(s.update))
    assert summary["best_val_loss"] == pytest.approx(card["best_val_loss"])
    assert summary["evaluation"]["h5"]["steering_mae"] == pytest.approx(
        card["evaluation"]["h5"]["steering_mae"])
    assert summary["parity"] == pytest.approx(card["parity"])


def test_the_archive_goes_in_as_a_reference_and_the_model_comes_out(trained):
    car, run_dir, tmp = trained.car, trained.run_dir, trained.base
    artifacts = {a.type: a for a in of_kind(read_run(run_dir), "artifact")}
    assert set(artifacts) == {"dataset", "model"}

    data = artifacts["dataset"]
    assert data.name == "wip" and data.use_after_commit        # an input of the run
    entries = {e.path: e for e in data.manifest.contents}
    assert entries["wip.tgz"].ref == (car / "wip.tgz").as_uri()
    assert json.loads(data.metadata)["sha256"] == sha256(car / "wip.tgz")
    assert open(entries["wip.tgz.sha256"].local_path).read() == \
        f"{sha256(car / 'wip.tgz')}  wip.tgz\n"
    # The archive's bytes were neither copied nor uploaded anywhere W&B writes.
    archive = sha256(car / "wip.tgz")
    written = [os.path.join(root, f) for root, _, files in os.walk(tmp)
               if "mycar" not in root for f in files]
    assert written, f"W&B wrote nothing under {tmp}"
    assert [p for p in written if sha256(p) == archive] == []

    model = artifacts["model"]
    assert model.name == "pilot-wip" and not model.use_after_commit
    files = {e.path: e.digest for e in model.manifest.contents}
    assert files == {f"pilot-wip{ext}": md5_b64(car / "models" / f"pilot-wip{ext}")
                     for ext in OUTPUTS}          # the card too, as published
    assert json.loads(model.metadata)["best_val_loss"] is not None
    # What `wandb sync` uploads later is still on disk after the job.
    staged = {e.path: e.local_path for e in list(data.manifest.contents) +
              list(model.manifest.contents) if e.local_path}
    assert "wip.tgz.sha256" in staged, staged
    assert [path for path, local in staged.items() if not os.path.isfile(local)] == []


def test_the_card_names_the_run(trained):
    car, r, run_dir = trained.car, trained.result, trained.run_dir
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    [run] = of_kind(read_run(run_dir), "run")
    assert card["wandb"]["run_id"] == run.run_id and str(run_dir).endswith(run.run_id)
    assert card["wandb"]["project"] == "p" and card["wandb"]["mode"] == "offline"
    assert card["wandb"]["url"] is None                   # offline: no URL yet
    assert f"W&B run pilot-wip ({run.run_id}): offline in {run_dir}" in r.stdout


def test_wandb_project_without_wandb_is_one_line_before_training(car, run, tmp_path):
    """A package named wandb that cannot be imported, first on PYTHONPATH,
    stands in for a machine without wandb. The archive is never opened (a
    stand-in would fail as damaged)."""
    fake = tmp_path / "site" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'wandb'\", name='wandb')\n")
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive, as far as gzip goes"))
    r = run("local_train.sh", env=wandb_env(tmp_path, PYTHONPATH=str(tmp_path / "site")))
    assert r.returncode == 1
    assert one_line_error(r) == (
        "local_train.sh: WANDB_PROJECT=p asks for W&B tracking but wandb is not "
        "installed: unset WANDB_PROJECT, or pip install 'robocar-trainer[wandb]'")
    assert r.stdout == ""                              # not even the tubs were checked
    assert not (car / "models").exists() or not os.listdir(car / "models")


def test_without_wandb_project_nothing_imports_wandb(tmp_path):
    """Every module of the job and every tracking hook, with WANDB_PROJECT
    unset and a wandb that fails on import first on the path."""
    fake = tmp_path / "wandb"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('wandb was imported')\n")
    code = (
        "import sys\n"
        "import trainer.task, trainer.job.training, trainer.client.submit\n"
        "from trainer.core.flags import train_args\n"
        "from trainer.job import tracking\n"
        "from trainer.job.plan import Plan\n"
        "plan = Plan.from_args(train_args(['--archive', 'wip.tgz', '-m', 'pilot-x']))\n"
        "tracker = tracking.start('pilot-x')\n"
        "card = {'best_val_loss': 0.1}\n"
        "with tracker:\n"
        "    tracker.inputs(plan)\n"
        "    tracker.history({'loss': [1.0], 'val_loss': [0.5]})\n"
        "    tracker.results(card)\n"
        "    tracker.model(plan, card)\n"
        "assert card == {'best_val_loss': 0.1}, card\n"
        "assert 'wandb' not in sys.modules\n"
        "assert tracking.job_env('p') == {}\n")
    env = script_env(PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]


# -- cloud jobs ------------------------------------------------------------------

DOC = discovery_document("aiplatform", "v1")


@pytest.mark.parametrize("mode,secret", [("offline", None), ("online", "wandb-api-key")])
def test_cloud_job_gets_the_wandb_settings_but_never_the_key(car, run, idle_vertex,
                                                             mode, secret):
    (car / "wip.tgz").write_bytes(b"archive")
    wandb = {"WANDB_PROJECT": "robocar", "WANDB_ENTITY": "team", "WANDB_MODE": mode}
    if secret:
        wandb["WANDB_API_KEY_SECRET"] = secret
    r = run("submit_cloud_train.sh", "-n", "-g", "none",
            env=dict(idle_vertex.env, WANDB_API_KEY=KEY, **wandb))
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert check(DOC, "GoogleCloudAiplatformV1CustomJob", body) == []
    env = body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]
    if secret:          # named in the user's project: in the job, the default is Google's
        wandb["WANDB_API_KEY_SECRET"] = f"projects/{idle_vertex.env['GOOGLE_CLOUD_PROJECT']}" \
            f"/secrets/{secret}"
    assert {e["name"]: e["value"] for e in env} == {"PYTHONUNBUFFERED": "1", **wandb,
                                                    "TRAINER_MACHINE": "n1-standard-8"}
    assert KEY not in r.stdout + r.stderr and "WANDB_API_KEY\"" not in r.stdout
    assert idle_vertex.requests == []


def test_an_online_cloud_run_without_a_secret_is_refused_before_anything_is_sent(
        car, run, idle_vertex):
    (car / "wip.tgz").write_bytes(b"archive")
    r = run("submit_cloud_train.sh", "-n", env=dict(idle_vertex.env, WANDB_PROJECT="robocar",
                                                    WANDB_API_KEY=KEY))
    assert r.returncode == 1 and r.stdout == ""
    line = one_line_error(r)
    assert line.startswith("submit_cloud_train.sh: WANDB_PROJECT is set, but a cloud job "
                           "never gets WANDB_API_KEY")
    assert "export WANDB_API_KEY_SECRET=wandb-api-key" in line and KEY not in r.stderr
    assert idle_vertex.requests == []


class SecretManager:
    """Secret Manager's versions.access on 127.0.0.1, holding one secret."""

    def __init__(self, name, value):
        self.requests = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                standin.requests.append(path)
                if path == f"/v1/{name}:access":
                    status, answer = 200, {"name": name, "payload": {
                        "data": base64.b64encode(value.encode()).decode()}}
                else:
                    status, answer = 403, {"error": {
                        "code": 403, "status": "PERMISSION_DENIED",
                        "message": "Permission 'secretmanager.versions.access' denied"}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_job_reads_the_api_key_from_secret_manager(monkeypatch):
    from trainer.core.errors import UserError
    from trainer.job import tracking

    secrets = SecretManager("projects/robocar-test/secrets/wandb-api-key/versions/latest",
                            KEY + "\n")
    try:
        for name, value in (("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", secrets.url),
                            ("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "True"),
                            ("GOOGLE_CLOUD_PROJECT", "robocar-test"),
                            ("WANDB_API_KEY_SECRET", "wandb-api-key"),
                            ("WANDB_MODE", "online"), ("WANDB_API_KEY", "")):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("WANDB_API_KEY")
        tracking.api_key_from_secret()
        assert os.environ["WANDB_API_KEY"] == KEY
        assert secrets.requests == ["/v1/projects/robocar-test/secrets/wandb-api-key/"
                                    "versions/latest:access"]
        monkeypatch.delenv("WANDB_API_KEY")
        monkeypatch.setenv("WANDB_API_KEY_SECRET", "projects/robocar-test/secrets/other")
        with pytest.raises(UserError, match="reading the secret projects/robocar-test/"
                           "secrets/other/versions/latest failed: HTTP 403 "
                           "PERMISSION_DENIED"):
            tracking.api_key_from_secret()
    finally:
        secrets.close()
