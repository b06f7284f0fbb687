"""The drive report in W&B (drive_report.sh with WANDB_PROJECT set): a run
of job type `drive` named drive-TUB, so that data -> model -> drive is one
lineage, as the training job's run starts it (job/tracking.py).

    log(drive, numbers, "models")      # nothing without WANDB_PROJECT

Its inputs: the model as an artifact of type `model` named as the training
run named it (the files of the set the card names that are in MODELS, so
that with the whole set W&B finds the very version the training logged),
and the tub as an artifact of type `dataset` (a reference to its folder,
never a copy). Its config: the model's name, file, format, runtime and
sha256; its history: one step per loop (inference and loop times, mode,
steering); its summary: the report's numbers.
"""
import json
import os

from trainer.core import bucket, lineage, settings


def check():
    """With WANDB_PROJECT set, wandb must import: one line before any work."""
    if settings.wandb_project():
        lineage.import_wandb()


def log(drive, n, models, say=print):
    if not settings.wandb_project():
        return None
    run = lineage.init(f"drive-{drive.name}", "drive")
    if run is None:
        return None
    import wandb
    ok = False
    try:
        model = n["model"] or {}
        run.config.update({"model": model.get("name"), "file": model.get("path"),
                           "format": model.get("format"), "runtime": model.get("runtime"),
                           "sha256": model.get("sha256"), "drive_loop_hz": n["hz"],
                           "tub": drive.tub})
        if model.get("name"):
            lineage.use(run, model_artifact(wandb, model, models))
        tub = wandb.Artifact(lineage.artifact_name(drive.name), type="dataset",
                             metadata={"records": n["records"], "loops": n["loops"]},
                             description="tub recorded while a pilot drove (robocar-trainer)")
        tub.add_reference(lineage.reference(drive.tub), name=drive.name, checksum=False)
        lineage.use(run, tub)
        for step, loop in enumerate(drive.loops):
            run.log({k: loop[k] for k in ("inference_ms", "period_ms", "work_ms")
                     if loop.get(k) is not None}
                    | {"pilot_mode": loop["mode"] != "user",
                       **({"pilot/angle": loop["pilot"][0]} if loop.get("pilot") else {}),
                       **({"user/angle": loop["user"][0]} if loop.get("user") else {})},
                    step=step)
        run.summary.update(summary(n))
        ok = True
    finally:
        run.finish(exit_code=0 if ok else 1)
    say(f"W&B run {run.name} ({run.id}): {lineage.where(run)}")
    return run


def model_artifact(wandb, model, models):
    """The model as the training run logged it: its name, type `model`, and
    the files its card names that are here (the driven file at least)."""
    name = model["name"]
    artifact = wandb.Artifact(lineage.artifact_name(name), type="model",
                              metadata={"sha256": model.get("sha256"),
                                        "format": model.get("format"),
                                        "card": model.get("card")},
                              description="DonkeyCar autopilot (robocar-trainer)")
    files = _set_files(name, models)
    path = model.get("path")
    if not files and isinstance(path, str) and os.path.isfile(path):
        files = [path]
    for path in files:
        artifact.add_file(path)
    return artifact


def _set_files(name, models):
    """The files of NAME's set that its card names and MODELS holds."""
    card = os.path.join(models, name + bucket.CARD)
    try:
        with open(card, encoding="utf-8") as f:
            named = json.load(f).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(named, dict):
        return []
    found = [os.path.join(models, f) for f in sorted(named)
             if isinstance(f, str) and os.path.basename(f) == f and f.startswith(name + ".")
             and os.path.isfile(os.path.join(models, f))]
    return found + [card]


def summary(n):
    inference = n["inference"] or {}
    return {"records": n["records"], "loops": n["loops"], "takeovers": len(n["takeovers"]),
            "takeover_records": [t["index"] for t in n["takeovers"]],
            "overruns": len(n["overruns"]), "budget_ms": n["budget_ms"],
            **{f"inference_{k}_ms": inference[k] for k in ("p50", "p95", "p99")
               if k in inference},
            "seconds": n["time"],
            "steering_mae": (n["steering"] or {}).get("mae")}
