"""The training job's steps, in order (task.py makes the plan):

fetch the archives -> extract them (in a child, while TensorFlow starts
here) -> load the bundled config (+ --set) and decide the type -> check
the tubs -> DonkeyCar's train() -> .tflite + .onnx + the fp16 and int8
.tflite -> parity and evaluation on real frames, the variants gated -> plots
-> model card -> copy every file to the output.

    card = run(Plan.from_args(args), storage)

Every step reads the plan and writes what it found into plan.results.
"""
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback

from trainer.core import (console, donkey, donkeysource, interrupts, modeldb, modeltypes,
                          scratch, settings)
from trainer.core.archive import extract, layout
from trainer.core.bucket import (CARD, FORMATS, FRAMES, H5, LOSS_PLOT, ONNX,
                                 PREDICTION_PLOT, TFLITE, claim, publish)
from trainer.core.config import check_values, load_car_config, parse_overrides
from trainer.core.errors import UserError, os_error, warn
from trainer.core.interrupts import Interrupted
from trainer.core.storage import atomic_path, parse_uri, sha256
from trainer.core.tubs import inspect_tub, read_records
from trainer.job import card, restarts, tracking, variants, verdict
from trainer.job.background import Background, removing
from trainer.job.evaluate import evaluate, keras_pilot
from trainer.job.export import check_input_size, export_onnx, export_tflite
from trainer.job.plots import loss_plot, prediction_plot

log = logging.getLogger("trainer")
# What to do about a bad record (tubs.inspect_tub) in an archive: training
# never changes the tubs it is given.
BAD_HINT = ("nothing was trained: make the archive again with make_tub_archive.sh "
            "--skip-bad (marks them deleted in the tub), or fix them")


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
    check_values(cfg, plan.overrides, plan.car)     # before Keras meets them
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
            shown = os.path.relpath(path, plan.car)
            records = read_records(path)[0]
            modeltypes.check_inputs(plan.model_type, records[0] if records else {}, shown)
            report = inspect_tub(path, (plan.cfg.IMAGE_W, plan.cfg.IMAGE_H),
                                 display_path=shown, depth=plan.cfg.IMAGE_DEPTH,
                                 hint=BAD_HINT)
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
    unseen = _unseen(plan, evaluation)
    transfer = _transfer(plan, storage)
    with plan.steps("train"):               # DonkeyCar's train(), its .tflite included
        _train(plan, transfer)
    tracker.history(plan.results.history)   # per epoch: train() takes no callbacks

    h5_pilot = _export(plan, local)
    with plan.steps("evaluate"):            # the tubs' last use
        images, driven = evaluate(plan, h5_pilot, unseen)
        variants.gate(plan)                 # one over its tolerance is not published
    with removing(extracted):               # beside the plots and the publishing
        with plan.steps("plots"):
            loss_plot(plan.results.history, plan.name, local[LOSS_PLOT])
            prediction_plot(driven, plan.results.predictions, plan.name,
                            local[PREDICTION_PLOT], plan.results.frames["source"])
        written = card.build(plan, variants.table(plan))
        tracker.results(written)
        with keeping(plan, local):
            written["seconds"]["total"] = round(time.time() - plan.start, 1)
            write_frames(local[FRAMES], images, {   # the variants published: their own
                fmt: found for fmt, found in plan.results.predictions.items()
                if fmt == "h5" or fmt in variants.VARIANTS
                and os.path.isfile(local[FORMATS[fmt]])})
            card.write(local[CARD], written, [p for s, p in local.items()
                                              if s != CARD and os.path.isfile(p)])
            with plan.steps("publish"):     # the card last; never over another run
                publish(storage, local, plan.outputs, record=restarts.recorder(storage))
    tracker.model(plan, written)
    parity = plan.results.parity
    plan.say(f"model {plan.name}: best val_loss {written['best_val_loss']:.4f} at epoch "
             f"{written['best_epoch']} of {written['epochs']}; parity tflite "
             f"{parity['tflite']:.1e}, onnx {parity['onnx']:.1e}")
    for line in variants.lines(written["variants"]):
        plan.say(line)
    plan.say("wrote " + ", ".join(uri for s, uri in plan.outputs.items()
                                   if os.path.isfile(local[s])))
    _list_here(plan, written)
    _conclude(plan, written)
    return written


@contextlib.contextmanager
def keeping(plan, local):
    """A trained model whose publishing fails (a full or read-only disk, the
    network, another run, a signal) is not thrown away with the scratch
    folder: its files move to a folder that outlives the run, which the
    last line names."""
    try:
        yield
    except BaseException as e:
        if getattr(e, "finished", False):     # the signal waited for the last move in
            raise Interrupted(interrupts.signum_of(e), kept=f"{plan.name} was published "
                              f"to {plan.output} first") from None
        out = os.path.dirname(local[CARD])
        with contextlib.suppress(OSError):      # DonkeyCar's list in scratch, not a model file
            os.remove(os.path.join(out, modeldb.FILE))
        try:
            kept = scratch.keep(out, plan.name)
        except OSError:
            raise e from None
        cp = "gcloud storage cp" if plan.output.startswith("gs://") else "cp"
        where = (f"the trained model is kept in {kept}: copy its files from there "
                 f"({cp} {kept}/* {plan.output.rstrip('/')}/ once that works)")
        if isinstance(e, KeyboardInterrupt):
            raise Interrupted(interrupts.signum_of(e), kept=f"nothing was published; "
                              f"{where}") from None
        if isinstance(e, UserError):
            raise UserError(f"{e}; {where}") from None
        if isinstance(e, OSError):
            raise UserError(f"{os_error(e)}; {where}") from None
        raise


def _list_here(plan, written):
    """A model written into this car folder's models/ goes in its
    models/database.json too, as `donkey train` does (donkey models lists it)."""
    if parse_uri(plan.output).scheme == "gs" or not os.path.isfile("config.py"):
        return
    cfg = load_car_config(".")
    models = getattr(cfg, "MODELS_PATH", None)
    if not models or not os.path.isdir(models) or not os.path.samefile(models, plan.output):
        return
    try:
        modeldb.register(cfg, {"Name": plan.name, "Type": plan.model_type,
                               "Tubs": ",".join(t["path"] for t in written["tubs"]),
                               "Time": time.time(), "Val loss": written["best_val_loss"],
                               "Transfer": plan.transfer, "Comment": "robocar-trainer"})
    except UserError as e:              # the model is written; only the list is not
        warn(f"{plan.name} was not listed: {e}")
        return
    except OSError as e:
        warn(f"{plan.name} was not listed: {os_error(e)}")
        return
    plan.say(f"listed {plan.name} in {modeldb.path_of(cfg)} (donkey models lists it)")


def _conclude(plan, written):
    """The verdict in words, then the drive line only for a model fit to drive."""
    judged = plan.results.verdict
    if not judged:
        plan.say(f"not judged: {plan.results.frames['note']}")
        plan.say(drive_line(plan.name, plan.model_type))
        return
    for line in verdict.lines(judged, plan.results.frames["source"]):
        plan.say(line)
    if judged["better"]:
        plan.say(drive_line(plan.name, plan.model_type))
    else:
        warn(verdict.poor(judged, plan.name, written["epochs"], written["records"]["live"]))


def _export(plan, local):
    """The .tflite (unless DonkeyCar's train() made it), the .onnx and the
    fp16 and int8 variants; the .h5's pilot, loaded once for the exports and
    the checks."""
    with plan.steps("export"):
        h5 = local[H5]
        if not os.path.isfile(local[TFLITE]):      # CREATE_TF_LITE was off
            with exporting(plan.model_type, "DonkeyCar's .tflite converter"):
                export_tflite(h5, local[TFLITE])
        with exporting(plan.model_type, "DonkeyCar's pilot loading the .h5"):
            h5_pilot = keras_pilot(plan.model_type, plan.cfg, h5)
        with exporting(plan.model_type, "the .onnx export (tf2onnx)"):
            export_onnx(h5_pilot.interpreter.model, local[ONNX])
    with plan.steps("variants"):
        variants.build(plan, h5_pilot.interpreter.model)
    return h5_pilot


@contextlib.contextmanager
def exporting(model_type, what):
    """A model type whose trained .h5 WHAT cannot take (a fork's type with a
    layer Keras cannot load back, or an operation a converter lacks), named
    with why in one line, not a traceback."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        raise export_failed(model_type, what, e) from None


def export_failed(model_type, what, error):
    """The one line for a MODEL_TYPE model WHAT failed on with ERROR."""
    found = donkeysource.here()
    where = donkeysource.describe(found) if found else "DonkeyCar"
    reason = " ".join(str(error).split())[:240] or "no message"
    return UserError(f"the {model_type} model trained, but {what} failed on it "
                     f"({type(error).__name__}: {reason}): {where} builds it with a layer "
                     "or an operation the exports cannot take: register its layer classes "
                     "(keras.utils.register_keras_serializable) so that its .h5 loads back, "
                     "use operations TFLite and ONNX have, or train a type that exports "
                     "(--type linear)")


def drive_line(name, model_type):
    """How to drive the model: the car runs the .tflite (download_models.sh
    there checks it first)."""
    return (f"to drive it: python manage.py drive --model models/{name}{TFLITE} --type "
            f"{modeltypes.drive_type(model_type, 'tflite')} (in the car folder, with the "
            f"model in its models/: ./download_models.sh -m {name} brings it from the "
            "bucket)")


FRAMES_SHIPPED = 8      # frames NAME.frames.npz carries for the car's check


def write_frames(path, images, outputs, n=FRAMES_SHIPPED):
    """N evenly spaced IMAGES (uint8, as the camera gives them) and the
    outputs for them of the .h5 (OUTPUTS["h5"], saved as "outputs") and of
    each other format given ("outputs_int8", ...): download_models.sh runs
    them through the car's pilot. A reduced-precision variant is held to its
    own outputs here, the others to the .h5's."""
    import numpy as np
    idx = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).astype(int))
    shipped = {"outputs" if fmt == "h5" else f"outputs_{fmt}":
               np.asarray(found, dtype=np.float32)[idx] for fmt, found in outputs.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, images=np.stack([np.asarray(images[i], dtype=np.uint8)
                                                for i in idx]), **shipped)


def _unseen(plan, evaluation):
    """The frames the model is judged on, kept out of its training:
    [(shown tub, path, records)]. With -E, every record of that archive;
    else the last tenth of each training tub (verdict.hold_out), kept from
    DonkeyCar's train() by a TRAIN_FILTER that applies the user's own too.
    Sets plan.results' held_out, baseline (the training labels) and frames."""
    cfg, found = plan.cfg, plan.results
    user = getattr(cfg, "TRAIN_FILTER", None)
    tubs = [(p, read_records(p)[0]) for p in plan.tub_paths]
    held = {} if evaluation else verdict.hold_out(tubs)
    if evaluation:
        archive, config_path, paths = evaluation
        name, root = parse_uri(archive["uri"]).name, os.path.dirname(config_path)
        unseen = [(f"{name}:{os.path.relpath(p, root)}", p,
                   verdict.user_kept(read_records(p)[0], p, cfg, user)) for p in paths]
        source, note = f"{name} (never trained on)", ("every record of another archive: "
                                                     "all of the training tubs trained")
    else:
        unseen = [(os.path.relpath(p, plan.car), p, verdict.user_kept(held[p], p, cfg, user))
                  for p, _ in tubs]
        source = "the last tenth of each training tub, held out of training"
        note = ("a stretch of each tub that training never saw; pass -E ARCHIVE to judge "
                "on new laps and train on every record")
    found.held_out = [{"tub": os.path.relpath(p, plan.car), "count": len(rs),
                       "records": [rs[0]["_index"], rs[-1]["_index"]]}
                      for p, rs in held.items() if rs]
    unseen = [u for u in unseen if u[2]]
    if not unseen:       # tubs too short to spare frames: judged on what it trained on
        plan.train_frames = [(p, verdict.user_kept(rs, p, cfg, user)) for p, rs in tubs]
        found.frames = {"source": "the training tubs (trained on)", "seen_in_training": True,
                        "note": f"too few records to hold out {verdict.HELD_MIN} from a "
                        "tub: no verdict; record more laps, or pass -E ARCHIVE"}
        return [(os.path.relpath(p, plan.car), p, rs) for p, rs in tubs]
    held_index = {p: {r["_index"] for r in rs} for p, rs in held.items()}
    plan.train_frames = [(p, verdict.user_kept(
        [r for r in rs if r["_index"] not in held_index.get(p, ())], p, cfg, user))
        for p, rs in tubs]
    labels = verdict.labels([r for _, rs in plan.train_frames for r in rs])
    if len(labels):
        found.baseline = {"means": labels.mean(axis=0).tolist(),
                          "spreads": labels.std(axis=0).tolist()}
    found.frames = {"source": source, "note": note, "seen_in_training": False,
                    "archive": archive if evaluation else None}
    if not modeltypes.judged_by_camera_alone(plan.model_type):
        found.baseline = {}
        found.frames["note"] = (f"a {plan.model_type} model needs recorded inputs besides "
                                "the camera, which the verdict does not feed")
    if held:
        cfg.TRAIN_FILTER = verdict.HeldOut(held, user)
    return unseen


def _in_tflite_conversion(error):
    """Whether ERROR came out of DonkeyCar's .tflite conversion, which its
    train() runs on the saved .h5 once training is done."""
    return any(frame.name == "keras_model_to_tflite"
               for frame in traceback.extract_tb(error.__traceback__))


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
        if _in_tflite_conversion(e):
            raise export_failed(plan.model_type, "DonkeyCar's .tflite converter", e) from None
        if "Negative dimension size" in str(e):     # Keras: the frame is too small
            raise UserError(f"frames of IMAGE_W={cfg.IMAGE_W} x IMAGE_H={cfg.IMAGE_H} "
                            f"(less any ROI_CROP) are too small for the layers of a "
                            f"{plan.model_type} model: use the camera's size, e.g. "
                            "IMAGE_W = 160, IMAGE_H = 120") from None
        raise
    except AssertionError as e:
        if "validation" in str(e):
            raise UserError(f"too few records for one validation batch of "
                            f"BATCH_SIZE={cfg.BATCH_SIZE}: record more laps, or "
                            "--set BATCH_SIZE=32") from None
        raise
    except Exception as e:      # train() converts the .h5 to .tflite at its end
        if isinstance(e, OSError) and not os.path.isfile(h5):
            # DonkeyCar converts to .tflite the .h5 its checkpoint never saved.
            raise UserError(f"training saved no model: no epoch ran or improved val_loss "
                            f"(MAX_EPOCHS={cfg.MAX_EPOCHS}): give MAX_EPOCHS of 1 or more, "
                            "and check the tub's labels") from None
        if _in_tflite_conversion(e):
            raise export_failed(plan.model_type, "DonkeyCar's .tflite converter", e) from None
        raise
    finally:
        if isinstance(getattr(cfg, "TRAIN_FILTER", None), verdict.HeldOut):
            if cfg.TRAIN_FILTER.user is None:       # the card shows the config as written
                del cfg.TRAIN_FILTER
            else:
                cfg.TRAIN_FILTER = cfg.TRAIN_FILTER.user
    if not os.path.isfile(h5):
        raise UserError(f"training saved no model: val_loss never improved "
                        f"({history.get('val_loss')}); check the tub's labels")
    plan.results.history, plan.results.split = history, split
