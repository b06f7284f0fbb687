"""The training job's steps, in order (task.py parses the arguments):

fetch the archives -> extract them (in a child, while TensorFlow starts
here) -> load the bundled config (+ --set) -> check
the tubs -> DonkeyCar's train() -> .tflite + .onnx -> parity and evaluation
on real frames -> plots -> model card -> copy every file to the output.
"""
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time

from trainer import console, donkey, restarts, settings, tracking
from trainer.archive import extract, layout
from trainer.background import Background, removing
from trainer.bucket import (CARD, FRAMES, H5, LOSS_PLOT, ONNX, PREDICTION_PLOT, TFLITE,
                            claim, default_model_name, model_files, publish)
from trainer.card import now, versions, write_card
from trainer.config import effective, load_car_config, parse_overrides, redact_overrides
from trainer.errors import UserError
from trainer.evaluate import evaluate, keras_pilot, sample_frames
from trainer.export import check_input_size, export_onnx, export_tflite
from trainer.plots import loss_plot, prediction_plot
from trainer.storage import atomic_path, parse_uri, sha256
from trainer.tubs import inspect_tub, read_records

log = logging.getLogger("trainer")


class Steps:
    """Wall seconds per step, for the card (and make bench):
    with steps("train"): ..."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, name):
        t = time.time()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0) + time.time() - t, 2)


def extract_all(jobs):
    """Extract each (archive, folder, shown name); returns (seconds, [(config.py
    path, [tub paths])]). Runs in the Background child."""
    t = time.time()
    layouts = [layout(extract(local, into), shown) for local, into, shown in jobs]
    return round(time.time() - t, 2), layouts


def check_model_type(model_type):
    """Types train() cannot train; an unknown one is refused by train() itself
    (see _train), before any data is read, so no pilot is built twice."""
    if model_type.startswith(("tflite_", "tensorrt_", "fastai_")):
        raise UserError(f"model type {model_type} cannot be trained here: give a "
                        "Keras type such as linear; .tflite is exported anyway")


def _unknown_type(model_type, error):
    """DonkeyCar's "unknown model type" ValueError, as one line naming the
    Keras types it lists."""
    known = str(error).split("supported types are", 1)[-1].split(",")
    keras = [k.strip() for k in known if not k.strip().startswith(("tflite_", "tensorrt_"))]
    return UserError(f"unknown model type {model_type}: use one of {', '.join(keras)}")


def run(args, storage, say=print):
    start = time.time()
    name = args.model_name or default_model_name(args.archive[0])
    outputs = model_files(args.output, name)
    if restarts.published_by_this_job(storage, outputs[CARD], say):
        return None
    donkey.require_gpu(settings.accelerator())   # a paid GPU: before fetching anything
    tracking.check()                                # W&B asked for: wandb must import
    # What is there now: refused without -f, else the only thing publish replaces.
    outputs = claim(storage, outputs, args.force, ours=restarts.own_outputs(storage))
    work = tempfile.mkdtemp(prefix="robocar-train-")
    try:
        return _run(args, storage, name, outputs, work, start, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe_device(gpus):
    if gpus:
        return f"TensorFlow sees {len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: " \
            f"{', '.join(gpus)}"
    return "TensorFlow sees no GPU: training on the CPU"


def _run(args, storage, name, outputs, work, start, say):
    steps = Steps()
    archives, jobs = [], []
    given = list(args.archive) + ([args.eval_archive] if args.eval_archive else [])
    for i, uri in enumerate(given):
        with steps("fetch"):
            local = storage.fetch(uri, os.path.join(work, "download"), what="archive")
            archives.append({"uri": uri, "sha256": sha256(local),
                             "bytes": os.path.getsize(local)})
        jobs.append((local, os.path.join(work, f"archive-{i}"), parse_uri(uri).name))
    # Extraction runs in a child while TensorFlow starts here (see background.py).
    unpacking = Background("extraction", extract_all, jobs)
    try:
        with steps("tensorflow_start"):
            donkey.import_tensorflow()   # the job's one TensorFlow start-up, quietly
        with steps("extract_wait"):
            steps.seconds["extract"], layouts = unpacking.result()
    finally:
        unpacking.stop()
    evaluation = None                   # -E: frames from an archive never trained on
    if args.eval_archive:
        evaluation = (archives.pop(), *layouts.pop())
    gpus = donkey.gpus()
    say(describe_device(gpus))
    car = os.path.dirname(layouts[0][0])
    tub_paths = [t for _, tubs in layouts for t in tubs]
    cfg = load_car_config(car, args.set)
    if not sys.stdout.isatty() and "VERBOSE_TRAIN" not in parse_overrides(args.set):
        cfg.VERBOSE_TRAIN = 2       # a log (the cloud, a file): one line per epoch
    # Only now, after the archive's config (Python) has run: the W&B run, which
    # may read the API key from Secret Manager into this process.
    tracker = tracking.start(name, say)    # a W&B run when WANDB_PROJECT is set
    with tracker, console.filtered():      # progress, not TensorFlow's chatter
        return _train_and_publish(args, storage, name, outputs, work, start, say,
                                  tracker, steps, archives, jobs, car, tub_paths, cfg,
                                  gpus, evaluation)


def _train_and_publish(args, storage, name, outputs, work, start, say, tracker, steps,
                       archives, jobs, car, tub_paths, cfg, gpus, evaluation):
    models = os.path.join(work, "out")
    os.makedirs(models)
    cfg.MODELS_PATH = models            # DonkeyCar's model database goes here
    with open(os.path.join(models, "database.json"), "w") as f:
        f.write("[]")                   # an empty one: a missing one is a warning
    model_type = args.type or cfg.DEFAULT_MODEL_TYPE
    check_model_type(model_type)
    tracker.inputs(cfg, archives, model_type, args)

    tubs = []
    with steps("check_tubs"):
        for path in tub_paths:
            report = inspect_tub(path, (cfg.IMAGE_W, cfg.IMAGE_H),
                                 display_path=os.path.relpath(path, car))
            for w in report.warnings:
                log.warning(w)
            say(report.line())
            tubs.append(report)

    transfer = None
    if args.transfer:
        with steps("fetch"):
            transfer = storage.fetch(args.transfer, os.path.join(work, "download"),
                                     what="transfer model")
        check_input_size(transfer, cfg, "transfer model", "transfer from a model "
                         "trained on this image size, or leave -T out",
                         trusted=args.trust_model_code)
    local = model_files(models, name)      # {suffix: path}, as OUTPUTS lists them
    h5 = local[H5]
    with steps("train"):             # DonkeyCar's train(), its .tflite included
        history, split = _train(cfg, tub_paths, h5, model_type, transfer)
    tracker.history(history)     # per epoch, after the fact: train() takes no callbacks

    files = {"h5": h5, "tflite": local[TFLITE], "onnx": local[ONNX]}
    with steps("evaluate"):          # the tubs' last use: frames for the checks
        images, driven, frames = evaluation_frames(car, tub_paths, evaluation, cfg)
    with removing([folder for _, folder, _ in jobs]):
        with steps("export"):
            if not os.path.isfile(files["tflite"]):      # CREATE_TF_LITE was off
                export_tflite(h5, files["tflite"])
            h5_pilot = keras_pilot(model_type, cfg, h5)  # the .h5 loaded once, for both
            export_onnx(h5_pilot.interpreter.model, files["onnx"])
        with steps("evaluate"):
            result = evaluate(model_type, cfg, files, h5_pilot, images, driven)

        with steps("plots"):
            loss_plot(history, name, local[LOSS_PLOT])
            prediction_plot(driven, result["predictions"], name, local[PREDICTION_PLOT],
                            frames["source"])

    val = [v for v in history.get("val_loss", []) if v == v]
    n_records = sum(t.records for t in tubs)
    epochs = len(history.get("loss", []))
    card = {
        "name": name, "created_at": now(), "model_type": model_type,
        "versions": versions(), "archives": archives,
        "tubs": [t.as_dict() for t in tubs],
        "records": {"live": n_records, **split},
        "transfer": args.transfer, "overrides": redact_overrides(args.set),
        "config": effective(cfg),
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "best_val_loss": min(val) if val else None,
        "epochs": epochs,
        "seconds": steps.seconds,
        "device": {"gpus": gpus, "kind": "GPU" if gpus else "CPU"},
        # What the GPU (or CPU) did: training frames seen per second of train().
        "frames_per_second": round(split["train"] * epochs / steps.seconds["train"], 1)
        if steps.seconds.get("train") else None,
        "parity": result["parity"], "evaluation": result["evaluation"],
        "evaluation_frames": frames,
        "job_id": settings.job_id(),
    }
    tracker.results(card)
    with steps("publish"):
        card["seconds"]["total"] = round(time.time() - start, 1)
        write_frames(local[FRAMES], images, result["predictions"]["h5"])
        write_card(local[CARD], card, [p for s, p in local.items() if s != CARD])
        publish(storage, local, outputs,     # the card last; never over another run
                record=restarts.recorder(storage))
    tracker.model(name, list(local.values()), card, list(outputs.values()))
    say(f"model {name}: best val_loss {card['best_val_loss']:.4f} after "
        f"{card['epochs']} epochs; parity tflite {result['parity']['tflite']:.1e}, "
        f"onnx {result['parity']['onnx']:.1e}")
    say(f"wrote {', '.join(outputs.values())}")
    say(drive_line(name, model_type))
    return card


def drive_line(name, model_type):
    """How to drive the model: the car runs the .tflite (download_models.sh
    there checks it first)."""
    return (f"to drive it: python manage.py drive --model models/{name}{TFLITE} --type "
            f"tflite_{model_type} (in the car folder, with the model in its models/: "
            f"./download_models.sh -m {name} brings it from the bucket)")


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


def evaluation_frames(car, tub_paths, evaluation, cfg):
    """(images, driven, what they are) for parity and evaluation: with -E,
    frames of that archive, which the model never saw; else frames of the
    training tubs, most of which it trained on (DonkeyCar's own random split
    is not exposed), and the card says so."""
    if evaluation:
        archive, config_path, paths = evaluation
        uri = archive["uri"]
        root = os.path.dirname(config_path)
        tubs = [(f"{parse_uri(uri).name}:{os.path.relpath(p, root)}", p,
                 read_records(p)[0]) for p in paths]
        source = f"{parse_uri(uri).name} (never trained on)"
        note = "frames of another archive: the model never saw them"
    else:
        tubs = [(os.path.relpath(p, car), p, read_records(p)[0]) for p in tub_paths]
        source = "the training tubs (mostly trained on)"
        note = (f"frames of the training tubs: DonkeyCar trained on a random "
                f"{cfg.TRAIN_TEST_SPLIT:.0%} of them, so this flatters the model; "
                "pass -E ARCHIVE to evaluate on new laps")
    images, driven, where = sample_frames(tubs, cfg)
    return images, driven, {"source": source, "note": note,
                            "seen_in_training": not evaluation, **where,
                            "archive": evaluation[0] if evaluation else None}


def _train(cfg, tub_paths, h5, model_type, transfer):
    """DonkeyCar's train(); (history, {"train": N, "validation": M}), the
    record counts DonkeyCar itself logged for its split."""
    from donkeycar.pipeline.training import train

    try:
        with donkey.split_counts() as split:
            history = train(cfg, tub_paths=",".join(tub_paths), model=h5,
                            model_type=model_type, transfer=transfer,
                            comment="robocar-trainer")
    except ValueError as e:
        if "supported types are" in str(e):
            raise _unknown_type(model_type, e) from None
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
    return history, split
