"""Following a job (-w) against the Vertex stand-in's job states and
Cloud Logging entries.list, over HTTP, with the clock in the test's hands
(no sleeps): a log line arriving late with an older timestamp is shown, an
entry is shown once, and a job that waits for a machine is explained."""
import datetime
import re

import pytest

from trainer.client import vertex
from trainer.core import cloud

PROJECT, REGION = "robocar-test", "europe-west1"
T4 = ("NVIDIA_TESLA_T4", 1)


def stamp(seconds):
    when = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.timezone.utc)
    return vertex.rfc3339(when + datetime.timedelta(seconds=seconds))


@pytest.fixture
def logs(idle_vertex):
    """(the stand-in, a LogTail of job 42 reading its entries.list)."""
    service = cloud.api("logging", "v2", idle_vertex.url, None)
    return idle_vertex, vertex.LogTail(service, PROJECT, "42")


def test_a_late_line_with_an_older_timestamp_is_shown_when_it_arrives(logs):
    """Cloud Logging may deliver an entry after newer ones: a cursor at the
    newest timestamp seen would never show it (the old LogTail did not)."""
    vx, tail = logs
    vx.log("42", "Epoch 1/3", stamp=stamp(0))
    vx.log("42", "Epoch 3/3", stamp=stamp(20))
    assert tail.fetch() == ["Epoch 1/3", "Epoch 3/3"]
    vx.log("42", "Epoch 2/3", stamp=stamp(10))                 # late, older
    assert tail.fetch() == ["Epoch 2/3"]
    assert tail.fetch() == []                                  # each entry once
    vx.log("42", "trainer: parity check failed", "ERROR", stamp=stamp(15))
    assert tail.fetch() == ["trainer: parity check failed"]
    assert tail.last_error == "trainer: parity check failed"


def test_the_window_forgets_what_it_will_not_read_again(logs):
    vx, tail = logs
    for i in range(5):
        vx.log("42", f"line {i}", stamp=stamp(i * 100))
    assert len(tail.fetch()) == 5
    assert len(tail.seen) == 1         # only the newest is within LOG_WINDOW of itself
    assert tail.fetch() == []
    _, _, body = vx.requests[-1]       # the next read goes back LOG_WINDOW from the newest
    assert body["filter"].endswith(f'timestamp>="{stamp(400 - vertex.LOG_WINDOW)}"')


def test_a_job_held_in_queued_gets_the_quota_hint_then_again(idle_vertex):
    """Done-when 3: a job waiting for a machine gets one line after a few
    minutes naming the usual causes and how to check them, then again at
    intervals; the clock is the test's."""
    aiplatform = cloud.api("aiplatform", "v1", idle_vertex.url, None)
    jobs = vertex.Jobs(aiplatform, PROJECT, REGION)
    created = jobs.create(vertex.job_body(
        display_name="pilot-wip-20260101-120000", image="europe-west1-docker.pkg.dev/"
        "robocar-test/robocar/trainer:dk5.3", module="trainer.task", args=[],
        machine="n1-standard-8", accelerator=T4, spot=True, output_dir="gs://b/job/x/"))
    job = idle_vertex.jobs[vertex.job_id(created)]
    job["state"] = "JOB_STATE_QUEUED"
    clock = [0.0]
    said = []

    def sleep(seconds):
        clock[0] += seconds
        if clock[0] > 1400:                    # Vertex gives up on it meanwhile
            job["state"] = "JOB_STATE_EXPIRED"

    waiting = vertex.waiting_hint(T4, True, REGION, "./submit_cloud_train.sh --check",
                                  "gcloud ai custom-jobs cancel 1 --region=europe-west1")
    ended = vertex.follow(jobs, None, created["name"], sleep=sleep, clock=lambda: clock[0],
                          say=lambda line: said.append((clock[0], line)), waiting=waiting)
    assert ended["state"] == "JOB_STATE_EXPIRED"
    hints = [(t, line) for t, line in said if "still waiting for a machine" in line]
    assert [t for t, _ in hints] and 300 <= hints[0][0] < 300 + vertex.POLL_MAX
    assert len(hints) == 2 and hints[1][0] - hints[0][0] >= vertex.QUEUE_HINT_EVERY
    assert re.fullmatch(
        r"-- \d\d:\d\d:\d\d job \d+: still waiting for a machine after 5m\d\ds: usually "
        r"no GPU quota for 1 x NVIDIA_TESLA_T4 on Spot in europe-west1 \(custom_model_"
        r"training_preemptible_nvidia_t4_gpus: \./submit_cloud_train\.sh --check reads "
        r"it\), or no spare Spot capacity in the region right now; it may wait for hours: "
        r"Ctrl-C leaves it waiting, `gcloud ai custom-jobs cancel 1 --region=europe-west1` "
        r"ends it \(another REGION, -g or -S may start sooner\)", hints[0][1]), hints[0][1]


def test_a_running_job_gets_no_hint(idle_vertex):
    aiplatform = cloud.api("aiplatform", "v1", idle_vertex.url, None)
    jobs = vertex.Jobs(aiplatform, PROJECT, REGION)
    created = jobs.create(vertex.job_body(
        display_name="x-20260101-120000", image="europe-west1-docker.pkg.dev/robocar-test/"
        "robocar/trainer:dk5.3", module="trainer.task", args=[], machine="n1-standard-8",
        accelerator=None, spot=False, output_dir="gs://b/job/x/"))
    job = idle_vertex.jobs[vertex.job_id(created)]
    job["state"] = "JOB_STATE_RUNNING"
    clock, said = [0.0], []

    def sleep(seconds):
        clock[0] += seconds
        if clock[0] > 2000:
            job["state"] = "JOB_STATE_SUCCEEDED"

    vertex.follow(jobs, None, created["name"], sleep=sleep, clock=lambda: clock[0],
                  say=said.append, waiting=lambda s: "still waiting")
    assert not [line for line in said if "still waiting" in line]
