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
import tempfile
import time

from trainer import tracking
from trainer.archive import extract, layout
from trainer.background import Background, removing
from trainer.card import now, versions, write_card
from trainer.config import effective, load_car_config
from trainer.errors import UserError
from trainer.storage import join, parse_uri, sha256
from trainer.tubs import inspect_tub, read_records

log = logging.getLogger("trainer")
OUTPUTS = (".h5", ".tflite", ".onnx", ".png", ".pred.png", ".json")


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


def default_model_name(archive_uri):
    stem = parse_uri(archive_uri).name
    for suffix in (".tgz", ".tar.gz"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return f"pilot-{stem}"


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
    outputs = [join(args.output, name + ext) for ext in OUTPUTS]
    if not args.force:
        taken = [u for u in outputs if storage.exists(u)]
        if taken:
            raise UserError(f"{taken[0]} already exists: pass -f to replace the "
                            f"model, or -m NAME to train another")
    tracker = tracking.start(name, say)    # a W&B run when WANDB_PROJECT is set
    work = tempfile.mkdtemp(prefix="robocar-train-")
    try:
        with tracker:
            return _run(args, storage, name, outputs, work, start, say, tracker)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, storage, name, outputs, work, start, say, tracker):
    steps = Steps()
    archives, jobs = [], []
    for i, uri in enumerate(args.archive):
        with steps("fetch"):
            local = storage.fetch(uri, os.path.join(work, "download"), what="archive")
            archives.append({"uri": uri, "sha256": sha256(local),
                             "bytes": os.path.getsize(local)})
        jobs.append((local, os.path.join(work, f"archive-{i}"), parse_uri(uri).name))
    # Extraction runs in a child while TensorFlow starts here (see background.py).
    unpacking = Background("extraction", extract_all, jobs)
    try:
        with steps("tensorflow_start"):
            from trainer.donkey import import_tensorflow
            import_tensorflow()         # the job's one TensorFlow start-up, quietly
        with steps("extract_wait"):
            steps.seconds["extract"], layouts = unpacking.result()
    finally:
        unpacking.stop()
    car = os.path.dirname(layouts[0][0])
    tub_paths = [t for _, tubs in layouts for t in tubs]
    cfg = load_car_config(car, args.set)
    models = os.path.join(work, "models")
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
        from trainer.export import check_input_size
        check_input_size(transfer, cfg, "transfer model", "transfer from a model "
                         "trained on this image size, or leave -T out")
    h5 = os.path.join(models, name + ".h5")
    with steps("train"):             # DonkeyCar's train(), its .tflite included
        history = _train(cfg, tub_paths, h5, model_type, transfer)
    tracker.history(history)     # per epoch, after the fact: train() takes no callbacks

    from trainer.evaluate import evaluate, keras_pilot, sample_frames
    from trainer.export import export_onnx, export_tflite
    files = {"h5": h5, "tflite": os.path.join(models, name + ".tflite"),
             "onnx": os.path.join(models, name + ".onnx")}
    with steps("evaluate"):          # the tubs' last use: frames for the checks
        records = [(p, read_records(p)[0]) for p in tub_paths]
        images, driven = sample_frames(records, cfg)
    with removing([folder for _, folder, _ in jobs]):
        with steps("export"):
            if not os.path.isfile(files["tflite"]):      # CREATE_TF_LITE was off
                export_tflite(h5, files["tflite"])
            h5_pilot = keras_pilot(model_type, cfg, h5)  # the .h5 loaded once, for both
            export_onnx(h5_pilot.interpreter.model, files["onnx"])
        with steps("evaluate"):
            result = evaluate(model_type, cfg, files, h5_pilot, images, driven)

        from trainer.plots import loss_plot, prediction_plot
        loss_png = os.path.join(models, name + ".png")
        pred_png = os.path.join(models, name + ".pred.png")
        with steps("plots"):
            loss_plot(history, name, loss_png)
            prediction_plot(driven, result["predictions"], name, pred_png)

    val = [v for v in history.get("val_loss", []) if v == v]
    n_records = sum(t.records for t in tubs)
    n_train = int(round(n_records * cfg.TRAIN_TEST_SPLIT))
    card = {
        "name": name, "created_at": now(), "model_type": model_type,
        "versions": versions(), "archives": archives,
        "tubs": [t.as_dict() for t in tubs],
        "records": {"live": n_records, "train": n_train,
                    "validation": n_records - n_train},
        "transfer": args.transfer, "overrides": args.set or [],
        "config": effective(cfg),
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "best_val_loss": min(val) if val else None,
        "epochs": len(history.get("loss", [])),
        "seconds": steps.seconds,
        "parity": result["parity"], "evaluation": result["evaluation"],
        "job_id": os.environ.get("CLOUD_ML_JOB_ID"),
    }
    tracker.results(card)
    card_path = os.path.join(models, name + ".json")
    local = [files["h5"], files["tflite"], files["onnx"], loss_png, pred_png, card_path]
    with steps("publish"):
        card["seconds"]["total"] = round(time.time() - start, 1)
        write_card(card_path, card, local[:-1])
        for path, uri in zip(local, outputs):
            storage.put(path, uri)
    tracker.model(name, local, card, outputs)
    say(f"model {name}: best val_loss {card['best_val_loss']:.4f} after "
        f"{card['epochs']} epochs; parity tflite {result['parity']['tflite']:.1e}, "
        f"onnx {result['parity']['onnx']:.1e}")
    say(f"wrote {', '.join(outputs)}")
    return card


def _train(cfg, tub_paths, h5, model_type, transfer):
    from donkeycar.pipeline.training import train

    try:
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
    return history
