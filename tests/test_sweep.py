"""Sweeps (issue 25): several trainings of one archive, --type A,B,C times
each --sweep KEY=V1,V2. submit_cloud_sweep.sh sends them to Vertex AI (the
stand-in here) at most --parallel at once, follows them together with one
log read for all, and ends with the comparison; local_train.sh runs the
same lists one after the other. -n shows every job and the cost.

The fast tests send nothing, or jobs that fail within seconds; the sweeps
that train (six cloud jobs, a local sweep) are e2e."""
import datetime
import gzip
import json
import os
import re
import shutil

import pytest
from discovery_schema import check
from helpers import one_line_error, script_env, write_synth_tub

from trainer.core import sweeps
from trainer.core.cloud import discovery_document
from trainer.core.flags import train_args

DOC = discovery_document("aiplatform", "v1")
SWEEP = ("--type", "linear,categorical,memory", "--sweep", "LEARNING_RATE=0.001,0.0005")
RUN = re.compile(r"^# run (\d)/6: (\S+) \((\w+) LEARNING_RATE=([\d.]+)\)$", re.M)


def bodies(stdout):
    """[(header match, body)] of a dry run's output."""
    heads = list(RUN.finditer(stdout))
    out = []
    for head, nxt in zip(heads, heads[1:] + [None]):
        text = stdout[head.end():nxt.start() if nxt else None]
        out.append((head, json.JSONDecoder().raw_decode(text.strip())[0]))
    return out


def container(body):
    return body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]


def test_dry_run_shows_six_bodies_and_what_they_cost(car, run, idle_vertex):
    """Done-when: -n prints the 6 jobs of 3 types x 2 learning rates and a
    total estimate (price an hour, from a named source, times the expected
    time); nothing is sent. DonkeyCar 5.3 never reads LEARNING_RATE: said."""
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    r = run("submit_cloud_sweep.sh", "-n", *SWEEP, env=idle_vertex.env)
    assert r.returncode == 0, r.stderr
    found = bodies(r.stdout)
    assert [int(h.group(1)) for h, _ in found] == [1, 2, 3, 4, 5, 6]
    names = {h.group(2) for h, _ in found}
    assert len(names) == 6
    ids = {re.search(r"-(sw\d{8}-\d{6})-", n).group(1) for n in names}
    assert len(ids) == 1
    sweep = ids.pop()
    for head, body in found:
        name, kind, rate = head.group(2), head.group(3), head.group(4)
        assert check(DOC, "GoogleCloudAiplatformV1CustomJob", body) == []
        assert name == f"pilot-wip-{sweep}-{kind}-lr{rate}"
        assert body["displayName"].startswith(name + "-")
        assert body["labels"]["sweep"] == sweep     # labels: lower case, no dots
        assert body["labels"]["model"] == name.replace(".", "-")
        env = {e["name"]: e["value"] for e in container(body)["env"]}
        assert env["TRAINER_SWEEP"] == sweep and env["TRAINER_MACHINE"] == "n1-standard-8"
        task = train_args(container(body)["args"])      # the job's own parser takes them
        assert (task.type, task.set, task.model_name) == (
            kind, [f"LEARNING_RATE={rate}"], name)
        assert task.archive == ["gs://robocar-test/training/wip.tgz"]
    assert {(h.group(3), h.group(4)) for h, _ in found} == {
        (k, r) for k in ("linear", "categorical", "memory") for r in ("0.001", "0.0005")}
    assert ("cost estimate: 6 runs x n1-standard-8 + 1 x NVIDIA_TESLA_T4 at US$0.84 an hour "
            "x about 15 min each = about US$1.26 in all (at most US$20.15 if every run hit "
            "the 4-hour timeout)") in r.stdout
    assert "prices: https://cloud.google.com/vertex-ai/pricing (custom training, " \
        "us-central1, on demand)" in r.stdout
    assert "submit_cloud_sweep.sh: warning: --sweep LEARNING_RATE: the DonkeyCar installed " \
        "here never reads LEARNING_RATE in training" in r.stderr
    assert "would upload wip.tgz to gs://robocar-test/training/wip.tgz" in r.stderr
    assert idle_vertex.requests == []


@pytest.mark.parametrize("argv,says", [
    (("--type", "linear,behavior"), r"--type behavior: a behavior model learns from "
     r"behavior/one_hot_state_array, which a plain tub lacks"),
    (("--type", "linear,imu"), r"--type imu: an imu model learns from imu/acl_x, imu/acl_y\.\.\."),
    (("--type", "linear,linera"), r"--type linera: DonkeyCar knows no such model type: did "
     r"you mean linear\?"),
    (("--sweep", "AUGMENTATIONS=['MULTIPLY'],[]"), r"sweep values are single values"),
    (("--sweep", "lr=1,2"), r"--sweep lr=1,2: expected KEY=V1,V2 with an upper-case"),
    (("--sweep", "MAX_EPOCHS=3"), r"a sweep needs at least two runs"),
    (("--sweep", "MAX_EPOCHS=3,4", "-c", "MAX_EPOCHS=5"), r"MAX_EPOCHS is given twice"),
    (("--sweep", "MAX_EPOCHS=10,0"), r"--sweep MAX_EPOCHS=0: MAX_EPOCHS must be a whole "
     r"number of 1 or more"),
    (("--type", "linear,categorical", "--parallel", "0"), r"--parallel 0: give how many"),
])
def test_what_cannot_be_swept_is_refused_before_anything_is_sent(car, run, idle_vertex,
                                                                 argv, says):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    r = run("submit_cloud_sweep.sh", *argv, env=idle_vertex.env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(says, one_line_error(r)), one_line_error(r)
    assert one_line_error(r).startswith("submit_cloud_sweep.sh: ")
    assert idle_vertex.requests == []


def test_submit_cloud_train_sh_points_a_list_of_types_to_the_sweep(car, run, idle_vertex):
    r = run("submit_cloud_train.sh", "--type", "linear,categorical", "-n",
            env=idle_vertex.env)
    assert r.returncode == 1
    assert one_line_error(r) == ("submit_cloud_train.sh: --type linear,categorical: this "
                                 "script sends one training job: for several, use "
                                 "submit_cloud_sweep.sh --type A,B,C")
    r = run("submit_cloud_train.sh", "--sweep", "MAX_EPOCHS=1,2", env=idle_vertex.env)
    assert r.returncode == 2 and "unknown flag --sweep" in r.stderr
    assert idle_vertex.requests == []


def test_runs_and_names_of_a_sweep():
    runs = sweeps.expand("linear,categorical", ["MAX_EPOCHS=5,10", "BATCH_SIZE=32,64"])
    assert len(runs) == 8 and runs[0].label() == "linear MAX_EPOCHS=5 BATCH_SIZE=32"
    sweep = sweeps.new_id(datetime.datetime(2025, 6, 12, 12, 5, 1))
    assert sweep == "sw20250612-120501" and sweeps.check_id(sweep) == sweep
    assert runs[-1].name("pilot-wip", sweep) == \
        "pilot-wip-sw20250612-120501-categorical-ep10-bs64"
    long = sweeps.expand(None, ["CACHE_POLICY=" + ",".join(["a" * 20, "b" * 20])])
    assert long[1].name("pilot-" + "x" * 60, sweep) == \
        "pilot-" + "x" * 60 + "-sw20250612-120501-2"          # too long: numbered
    assert sweeps.expand(None, ["STEERING_OFFSET=-0.1,0.1"])[0].overrides() == [
        "STEERING_OFFSET=-0.1"]
    assert sweeps.unread(["LEARNING_RATE", "MAX_EPOCHS", "OPTIMIZER"]) == [
        "LEARNING_RATE", "OPTIMIZER"]


def model(job):
    """The model a job trains: its display name without the time stamp."""
    return job["displayName"][:-len("-20250612-120501")]


def overlap(jobs):
    """The most jobs that were created and not yet ended at one time."""
    events = sorted([(j["createTime"], 1) for j in jobs] + [(j["endTime"], -1)
                                                            for j in jobs])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_failing_jobs_stop_nothing_and_one_log_read_follows_them_all(car, run, vertex,
                                                                      gcs):
    """Three runs of a damaged archive, at most two at once: each job fails
    with its own reason, each on its own line; each poll reads the log of
    every job it follows in one entries.list; the sweep ends with exit 1."""
    gcs.put("training/wip.tgz", gzip.compress(b"not a tar"))
    r = run("submit_cloud_sweep.sh", "--type", "linear,categorical,memory", "-g", "none",
            "--parallel", "2", env=vertex.env, timeout=600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = list(vertex.jobs.values())
    assert len(jobs) == 3 and {j["state"] for j in jobs} == {"JOB_STATE_FAILED"}
    assert overlap(jobs) == 2
    for j in jobs:
        name = model(j)
        assert re.search(rf"^run \d {name}: failed: trainer: archive wip\.tgz is damaged "
                         r"or not a gzip tar", r.stdout, re.M), r.stdout
    reads = [body["filter"] for method, path, body in vertex.requests
             if path.endswith("entries:list")]
    assert reads and max(f.count("job_id=") for f in reads) == 2
    assert one_line_error(r) == "submit_cloud_sweep.sh: all 3 runs of sweep " + \
        re.search(r"sweep (sw\S+):", r.stdout).group(1) + " failed: see each one's " \
        "reason above"
    assert gcs.names("models/") == []


@pytest.mark.e2e
def test_six_jobs_at_most_two_at_once_one_fails_five_are_compared(car, run, vertex, gcs,
                                                                   tmp_path):
    """Done-when: 3 types x 2 learning rates as 6 jobs on the stand-in, never
    more than --parallel 2 at once, one made to fail: the other five train,
    are compared (the page opened in chromium) and the best is named."""
    import browser

    write_synth_tub(car / "data", records=200)
    assert run("make_tub_archive.sh").returncode == 0
    vertex.fail = lambda job: model(job).endswith("-memory-lr0.0005")
    r = run("submit_cloud_sweep.sh", *SWEEP, "-g", "none", "--parallel", "2",
            env=vertex.env, timeout=1800)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-4000:]
    out = r.stdout
    sweep = re.search(r"^sweep (sw\d{8}-\d{6}): 6 runs of wip\.tgz", out, re.M).group(1)
    jobs = list(vertex.jobs.values())
    assert len(jobs) == 6 and overlap(jobs) == 2
    states = {model(j): j["state"] for j in jobs}
    failed = f"pilot-wip-{sweep}-memory-lr0.0005"
    assert states.pop(failed) == "JOB_STATE_FAILED"
    assert set(states.values()) == {"JOB_STATE_SUCCEEDED"}
    assert re.search(rf"^run 6 {failed}: failed: RuntimeError: this worker was made to "
                     "fail by the test", out, re.M), out
    assert re.search(rf"\[\d/6\] pilot-wip-{sweep}-linear-lr0\.001: running", out)
    for name in states:                 # a normal run each: its card carries the sweep
        card = json.loads(gcs.read(f"models/{name}.json"))
        assert card["sweep"] == sweep and card["cloud"]["machine"] == "n1-standard-8"
    ranked = re.findall(rf"^\d +(pilot-wip-{sweep}-\S+)", out, re.M)
    assert sorted(ranked) == sorted(states)
    assert re.search(rf"^best: ({'|'.join(map(re.escape, states))}) \(", out, re.M)
    page = car / f"{sweep}.html"
    html = browser.rendered(str(page))
    assert browser.pictures_shown(html) == 4
    text = browser.text(html)
    assert text.count(f"pilot-wip-{sweep}-") >= 5 and failed not in text
    assert one_line_error(r) == (
        f"submit_cloud_sweep.sh: 1 of 6 runs failed (run 6, {failed}: RuntimeError: this "
        f"worker was made to fail by the test); the 5 others are compared in {sweep}.html")
    shutil.rmtree(car / "data")


@pytest.mark.e2e
def test_a_local_sweep_runs_one_after_the_other_and_a_failed_run_stops_nothing(
        car, run, tmp_path):
    """local_train.sh with lists: two runs, the second fails on its own
    (its crop leaves nothing of the frame), the first is compared; its card
    and W&B run (offline) carry the sweep id, the W&B run as its group."""
    write_synth_tub(car / "data", records=200)
    assert run("make_tub_archive.sh").returncode == 0
    wandb = {name: str(tmp_path / name.lower()) for name in ("WANDB_DIR", "WANDB_DATA_DIR",
                                                             "WANDB_CACHE_DIR",
                                                             "WANDB_CONFIG_DIR")}
    for folder in wandb.values():                   # W&B offline, nothing in HOME
        os.makedirs(folder)
    r = run("local_train.sh", "--type", "linear", "--sweep", "ROI_CROP_TOP=10,120", "-c",
            "TRANSFORMATIONS=['CROP']",
            env=script_env(WANDB_MODE="offline", WANDB_PROJECT="p", **wandb), timeout=1800)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-4000:]
    sweep = re.search(r"^sweep (sw\d{8}-\d{6}): 2 runs of wip\.tgz, one after the other",
                      r.stdout, re.M).group(1)
    ok, bad = re.findall(r"^-- run \d/2: (\S+)", r.stdout, re.M)
    assert ok.startswith(f"pilot-wip-{sweep}-linear-") and ok.endswith("10"), ok
    assert r.stdout.index(f"-- run 1/2: {ok}") < r.stdout.index(f"-- run 2/2: {bad}")
    assert f"run 2 ({bad}) failed: -c ROI_CROP_TOP=120: ROI_CROP_TOP + ROI_CROP_BOTTOM" \
        in r.stdout
    card = json.loads((car / "models" / f"{ok}.json").read_text())
    assert card["sweep"] == sweep and card["wandb"]["group"] == sweep
    assert card["config"]["ROI_CROP_TOP"] == 10
    assert not (car / "models" / f"{bad}.json").exists()
    assert re.search(rf"^1 +{ok} +linear", r.stdout, re.M)
    assert (car / f"{sweep}.html").is_file()
    assert one_line_error(r) == (
        f"local_train.sh: 1 of 2 runs failed (run 2, {bad}: -c ROI_CROP_TOP=120: "
        "ROI_CROP_TOP + ROI_CROP_BOTTOM (120 + 0) leave nothing of the 120 pixels of "
        "IMAGE_H for CROP: crop less, e.g. ROI_CROP_TOP = 40); the other run is compared "
        f"in {sweep}.html")


def test_ctrl_c_leaves_the_jobs_sent_running_and_sends_no_more(car, gcs, make_vertex):
    """Ctrl-C while two of three jobs wait for a machine: exit 130, both keep
    running (each one's cancel command printed), the third is never sent."""
    import signal
    import subprocess

    from hardening import Lines, ctrl_c_as_in_a_terminal

    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    vx = make_vertex(gcs, run_jobs=False)                   # the jobs stay pending
    proc = subprocess.Popen([str(car / "submit_cloud_sweep.sh"), "--type",
                             "linear,categorical,memory", "-g", "none"], cwd=car,
                            env=vx.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        out.wait(r"^created Vertex AI job \d+ for run 2 ", proc, timeout=120)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out, err = out.rest(), err.rest()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert len(vx.jobs) == 2
    assert {j["state"] for j in vx.jobs.values()} == {"JOB_STATE_PENDING"}
    for jid in vx.jobs:
        assert f"gcloud ai custom-jobs cancel {jid} --region=europe-west1" in err
    sweep = re.search(r"sweep (sw\S+):", out).group(1)
    assert f"not sent: pilot-wip-{sweep}-memory" in err
    assert (f"when they have succeeded: ./compare_models.sh pilot-wip-{sweep}-linear "
            f"pilot-wip-{sweep}-categorical") in err
