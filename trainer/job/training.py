"""The training job's steps, in order (task.py makes the plan):

fetch the archives -> extract them (in a child, while TensorFlow starts
here) -> load the bundled config (+ --set) and decide the type -> check
the tubs -> DonkeyCar's train() -> .tflite + .onnx -> parity and evaluation
on real frames -> plots -> model card -> copy every file to the output.

    card = run(Plan.from_args(args), storage)

Every step reads the plan and writes what it found into plan.results.
"""
import logging
import os
import shutil
import sys
import tempfile
import time

from trainer.core import console, donkey, modeltypes, settings
from trainer.core.archive import extract, layout
from trainer.core.bucket import (CARD, FRAMES, H5, LOSS_PLOT, ONNX, PREDICTION_PLOT,
                                 TFLITE, claim, publish)
from trainer.core.config import load_car_config, parse_overrides
from trainer.core.errors import UserError
from trainer.core.storage import atomic_path, parse_uri, sha256
from trainer.core.tubs import inspect_tub, read_records
from trainer.job import card, restarts, tracking
from trainer.job.background import Background, removing
from trainer.job.evaluate import evaluate, keras_pilot, sample_frames
from trainer.job.export import check_input_size, export_onnx, export_tflite
from trainer.job.plots import loss_plot, prediction_plot

log = logging.getLogger("trainer")


def extract_all(jobs):
    """Extract each (archive, folder, shown name); returns (seconds, [(config.py
    path, [tub paths])]). Runs in the Background child."""
    t = time.time()
    layouts = [layout(extract(local, into), shown) for local, into, shown in jobs]
    return round(time.time() - t, 2), layouts


def run(plan, storage):
    """Train, check and publish PLAN's model; its card, or None when an
    earlier attempt of this cloud job already published it."""
    if restarts.published_by_this_job(storage, plan.outputs[CARD], plan.say):
        return None
    donkey.require_gpu(settings.accelerator())   # a paid GPU: before fetching anything
    tracking.check()                                # W&B asked for: wandb must import
    # What is there now: refused without -f, else the only thing publish replaces.
    plan.outputs = claim(storage, plan.outputs, plan.force,
                         ours=restarts.own_outputs(storage))
    plan.work = tempfile.mkdtemp(prefix="robocar-train-")
    try:
        return _run(plan, storage)
    finally:
        shutil.rmtree(plan.work, ignore_errors=True)


def describe_device(gpus):
    if gpus:
        return f"TensorFlow sees {len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: " \
            f"{', '.join(gpus)}"
    return "TensorFlow sees no GPU: training on the CPU"


def _fetch_and_extract(plan, storage):
    """The archives fetched and extracted (beside TensorFlow's start): the
    (archive, config.py, tubs) of the -E archive or None, and the folders
    extracted; plan.car and plan.tub_paths are the training archives'."""
    jobs = []
    given = plan.archives + ([plan.eval_archive] if plan.eval_archive else [])
    for i, uri in enumerate(given):
        with plan.steps("fetch"):
            local = storage.fetch(uri, os.path.join(plan.work, "download"), what="archive")
            plan.results.archives.append({"uri": uri, "sha256": sha256(local),
                                          "bytes": os.path.getsize(local)})
        jobs.append((local, os.path.join(plan.work, f"archive-{i}"), parse_uri(uri).name))
    # Extraction runs in a child while TensorFlow starts here (see background.py).
    unpacking = Background("extraction", extract_all, jobs)
    try:
        with plan.steps("tensorflow_start"):
            donkey.import_tensorflow()   # the job's one TensorFlow start-up, quietly
        with plan.steps("extract_wait"):
            plan.steps.seconds["extract"], layouts = unpacking.result()
    finally:
        unpacking.stop()
    evaluation = None                   # -E: frames from an archive never trained on
    if plan.eval_archive:
        evaluation = (plan.results.archives.pop(), *layouts.pop())
    plan.car = os.path.dirname(layouts[0][0])
    plan.tub_paths = [t for _, tubs in layouts for t in tubs]
    return evaluation, [folder for _, folder, _ in jobs]


def _run(plan, storage):
    evaluation, extracted = _fetch_and_extract(plan, storage)
    plan.results.gpus = donkey.gpus()
    plan.say(describe_device(plan.results.gpus))
    plan.cfg = cfg = load_car_config(plan.car, plan.overrides)
    if not sys.stdout.isatty() and "VERBOSE_TRAIN" not in parse_overrides(plan.overrides):
        cfg.VERBOSE_TRAIN = 2       # a log (the cloud, a file): one line per epoch
    where = "--type" if plan.type_given else "the config's DEFAULT_MODEL_TYPE"
    plan.model_type, note = modeltypes.trainable(plan.type_given or cfg.DEFAULT_MODEL_TYPE,
                                                 where)
    if note:
        plan.say(note)
    # Only now, after the archive's config (Python) has run: the W&B run, which
    # may read the API key from Secret Manager into this process.
    tracker = tracking.start(plan.name, plan.say)  # a W&B run when WANDB_PROJECT is set
    with tracker, console.filtered():              # progress, not TensorFlow's chatter
        return _train_and_publish(plan, storage, tracker, evaluation, extracted)


def _check_tubs(plan):
    with plan.steps("check_tubs"):
        for path in plan.tub_paths:
            report = inspect_tub(path, (plan.cfg.IMAGE_W, plan.cfg.IMAGE_H),
                                 display_path=os.path.relpath(path, plan.car))
            for w in report.warnings:
                log.warning(w)
            plan.say(report.line())
            plan.results.tubs.append(report)


def _transfer(plan, storage):
    """The -T model, fetched and checked against the config; or None."""
    if not plan.transfer:
        return None
    with plan.steps("fetch"):
        path = storage.fetch(plan.transfer, os.path.join(plan.work, "download"),
                             what="transfer model")
    check_input_size(path, plan.cfg, "transfer model", "transfer from a model trained on "
                     "this image size, or leave -T out", trusted=plan.trusted)
    return path


def _train_and_publish(plan, storage, tracker, evaluation, extracted):
    local = plan.local_files()              # {suffix: path}, as OUTPUTS lists them
    models = os.path.dirname(local[CARD])
    os.makedirs(models)
    plan.cfg.MODELS_PATH = models           # DonkeyCar's model database goes here
    with open(os.path.join(models, "database.json"), "w") as f:
        f.write("[]")                       # an empty one: a missing one is a warning
    tracker.inputs(plan)
    _check_tubs(plan)
    transfer = _transfer(plan, storage)
    with plan.steps("train"):               # DonkeyCar's train(), its .tflite included
        _train(plan, transfer)
    tracker.history(plan.results.history)   # per epoch: train() takes no callbacks

    with plan.steps("evaluate"):            # the tubs' last use: frames for the checks
        images, driven = evaluation_frames(plan, evaluation)
    with removing(extracted):
        h5_pilot = _export(plan, local)
        with plan.steps("evaluate"):
            evaluate(plan, h5_pilot, images, driven)
        with plan.steps("plots"):
            loss_plot(plan.results.history, plan.name, local[LOSS_PLOT])
            prediction_plot(driven, plan.results.predictions, plan.name,
                            local[PREDICTION_PLOT], plan.results.frames["source"])
    written = card.build(plan)
    tracker.results(written)
    with plan.steps("publish"):
        written["seconds"]["total"] = round(time.time() - plan.start, 1)
        write_frames(local[FRAMES], images, plan.results.predictions["h5"])
        card.write(local[CARD], written, [p for s, p in local.items() if s != CARD])
        publish(storage, local, plan.outputs,   # the card last; never over another run
                record=restarts.recorder(storage))
    tracker.model(plan, written)
    parity = plan.results.parity
    plan.say(f"model {plan.name}: best val_loss {written['best_val_loss']:.4f} after "
             f"{written['epochs']} epochs; parity tflite {parity['tflite']:.1e}, "
             f"onnx {parity['onnx']:.1e}")
    plan.say(f"wrote {', '.join(plan.outputs.values())}")
    plan.say(drive_line(plan.name, plan.model_type))
    return written


def _export(plan, local):
    """The .tflite (unless DonkeyCar's train() made it) and the .onnx; the
    .h5's pilot, loaded once for the ONNX export and the checks."""
    with plan.steps("export"):
        h5 = local[H5]
        if not os.path.isfile(local[TFLITE]):      # CREATE_TF_LITE was off
            export_tflite(h5, local[TFLITE])
        h5_pilot = keras_pilot(plan.model_type, plan.cfg, h5)
        export_onnx(h5_pilot.interpreter.model, local[ONNX])
    return h5_pilot


def drive_line(name, model_type):
    """How to drive the model: the car runs the .tflite (download_models.sh
    there checks it first)."""
    return (f"to drive it: python manage.py drive --model models/{name}{TFLITE} --type "
            f"{modeltypes.drive_type(model_type, 'tflite')} (in the car folder, with the "
            f"model in its models/: ./download_models.sh -m {name} brings it from the "
            "bucket)")


FRAMES_SHIPPED = 8      # frames NAME.frames.npz carries for the car's check


def write_frames(path, images, outputs, n=FRAMES_SHIPPED):
    """N evenly spaced IMAGES (uint8, as the camera gives them) and the .h5's
    OUTPUTS for them: download_models.sh runs them through the car's pilot."""
    import numpy as np
    idx = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).astype(int))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, images=np.stack([np.asarray(images[i], dtype=np.uint8)
                                                for i in idx]),
                            outputs=np.asarray(outputs, dtype=np.float32)[idx])


def evaluation_frames(plan, evaluation):
    """(images, driven) for parity and evaluation, and in plan.results.frames
    what they are: with -E, frames of that archive, which the model never
    saw; else frames of the training tubs, most of which it trained on
    (DonkeyCar's own random split is not exposed), and the card says so."""
    if evaluation:
        archive, config_path, paths = evaluation
        uri = archive["uri"]
        root = os.path.dirname(config_path)
        tubs = [(f"{parse_uri(uri).name}:{os.path.relpath(p, root)}", p,
                 read_records(p)[0]) for p in paths]
        source = f"{parse_uri(uri).name} (never trained on)"
        note = "frames of another archive: the model never saw them"
    else:
        tubs = [(os.path.relpath(p, plan.car), p, read_records(p)[0])
                for p in plan.tub_paths]
        source = "the training tubs (mostly trained on)"
        note = (f"frames of the training tubs: DonkeyCar trained on a random "
                f"{plan.cfg.TRAIN_TEST_SPLIT:.0%} of them, so this flatters the model; "
                "pass -E ARCHIVE to evaluate on new laps")
    images, driven, where = sample_frames(tubs, plan.cfg)
    plan.results.frames = {"source": source, "note": note,
                           "seen_in_training": not evaluation, **where,
                           "archive": evaluation[0] if evaluation else None}
    return images, driven


def _unknown_type(model_type, error):
    """DonkeyCar's "unknown model type" ValueError, as one line naming the
    Keras types it lists."""
    known = str(error).split("supported types are", 1)[-1].split(",")
    keras = [k.strip() for k in known if not k.strip().startswith(modeltypes.RUNTIME_PREFIXES)]
    return UserError(f"unknown model type {model_type}: use one of {', '.join(keras)}")


def _train(plan, transfer):
    """DonkeyCar's train(), into plan.results: the history, and the record
    counts DonkeyCar itself logged for its split."""
    from donkeycar.pipeline.training import train

    cfg, h5 = plan.cfg, plan.local_files()[H5]
    try:
        with donkey.split_counts() as split:
            history = train(cfg, tub_paths=",".join(plan.tub_paths), model=h5,
                            model_type=plan.model_type, transfer=transfer,
                            comment="robocar-trainer")
    except ValueError as e:
        if "supported types are" in str(e):
            raise _unknown_type(plan.model_type, e) from None
        raise
    except AssertionError as e:
        if "validation" in str(e):
            raise UserError(f"too few records for one validation batch of "
                            f"BATCH_SIZE={cfg.BATCH_SIZE}: record more laps, or "
                            "--set BATCH_SIZE=32") from None
        raise
    if not os.path.isfile(h5):
        raise UserError(f"training saved no model: val_loss never improved "
                        f"({history.get('val_loss')}); check the tub's labels")
    plan.results.history, plan.results.split = history, split
