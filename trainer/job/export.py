"""Exports of a trained .h5: .tflite (DonkeyCar's converter), .onnx (tf2onnx),
and the smaller .tflite variants (job/variants.py judges them).

    export_tflite("models/x.h5", "models/x.tflite")
    export_onnx(model, "models/x.onnx")    # model: the loaded Keras model
    export_fp16(model, "models/x.fp16.tflite")
    export_int8(model, frames, "models/x.int8.tflite")   # frames: [[input, ...], ...]

Keras 2 (DonkeyCar 5.3) and Keras 3 (5.4) write different .h5 files; a
Keras 3 file loads with `keras`, a Keras 2 one with `tf.keras`.

A model someone else made is untrusted: a Lambda layer holds Python code
that runs when the model loads. check_model_code reads the .h5's
model_config with h5py, before anything loads it, and refuses such a model
unless the user passed --trust-model-code (trust_model_code()).
"""
import json

from trainer.core import donkey
from trainer.core.errors import UserError
from trainer.core.flags import TRUST_FLAG
from trainer.core.storage import atomic_path

# TensorRT 8.2 (JetPack 4.6, the last for a Jetson Nano) reads ONNX opsets up to 13.
ONNX_OPSET = 13
# Layers whose config carries code (Keras 2's Lambda: marshalled bytecode;
# Keras 3's '__lambda__' objects), which load_model runs.
CODE_CLASSES = ("Lambda", "__lambda__")
_trusted = False


def trust_model_code():
    """--trust-model-code: models may hold code. Keras 3 also needs its safe
    mode off for DonkeyCar's own load_model calls to take them."""
    global _trusted
    _trusted = True
    try:
        import keras
        keras.config.enable_unsafe_deserialization()
    except (ImportError, AttributeError):
        pass                        # Keras 2: its .h5 loader has no safe mode


def code_layers(path):
    """Names of the layers in the .h5 at PATH that deserialise code."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError:
        return []                   # not an .h5: loading it says so
    if raw is None:
        return []                   # weights only: no layers, no code
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        return ["model_config (unreadable)"]
    found, stack = [], [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            inner = node.get("config") if isinstance(node.get("config"), dict) else {}
            if node.get("class_name") in CODE_CLASSES:
                found.append(f"{node['class_name']} {inner.get('name') or ''}".strip())
            elif node.get("function_type") == "lambda":      # Keras 2's layer config
                found.append(f"Lambda {node.get('name') or ''}".strip())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(set(found))


def check_model_code(path, what, trusted=None):
    """Refuse the .h5 at PATH when a layer holds code, unless TRUSTED
    (default: whether trust_model_code() was called)."""
    trusted = _trusted if trusted is None else trusted
    found = [] if trusted else code_layers(path)
    if found:
        raise UserError(f"the {what} {path} has a layer that runs Python code when it "
                        f"loads ({found[0]}): pass {TRUST_FLAG} only if you trust who "
                        "made it, or use a model made by local_train.sh")


def load_keras(path, trusted=None):
    trusted = _trusted if trusted is None else trusted
    tf = donkey.import_tensorflow()
    try:
        import keras
        if int(keras.__version__.split(".")[0]) >= 3:
            return keras.models.load_model(path, compile=False, safe_mode=not trusted)
    except ImportError:
        pass
    return tf.keras.models.load_model(path, compile=False)


def check_input_size(path, cfg, what, fix, trusted=None):
    """Refuse a .h5 that holds code (check_model_code), cannot load, or whose
    frames differ from the config's (IMAGE_W x IMAGE_H x IMAGE_DEPTH):
    DonkeyCar would only fail mid-run."""
    check_model_code(path, what, trusted)
    try:
        model = load_keras(path, trusted)
    except (OSError, ValueError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot load the {what} {path} ({reason}): give a .h5 made "
                        "by local_train.sh") from None
    want = (cfg.IMAGE_H, cfg.IMAGE_W, cfg.IMAGE_DEPTH)
    have = tuple(model.inputs[0].shape[1:])
    if have != want:
        size = lambda s: "x".join("?" if x is None else str(x) for x in (s[1], s[0], *s[2:]))  # noqa: E731
        raise UserError(f"the {what} {path} takes {size(have)} images but the config "
                        f"gives {size(want)} (IMAGE_W x IMAGE_H x IMAGE_DEPTH): {fix}")


def export_tflite(h5, out):
    donkey.quiet()
    from donkeycar.parts.interpreter import keras_model_to_tflite
    keras_model_to_tflite(h5, out)


def export_onnx(model, out):
    """Convert the Keras MODEL (the h5 pilot's, loaded once) to ONNX at OUT."""
    import tf2onnx
    tf = donkey.import_tensorflow()

    spec = tuple(tf.TensorSpec(i.shape, tf.float32, name=i.name.split(":")[0])
                 for i in model.inputs)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=ONNX_OPSET,
                               output_path=out)


def tflite_converter(model):
    """A TFLiteConverter for the Keras MODEL, made as the DonkeyCar here makes
    its own .tflite (parts/interpreter.py keras_to_tflite): from the Keras 2
    model, or for Keras 3 through a concrete function of batch 1, as DonkeyCar
    5.4 does. Its TfLite pilot reads what either writes."""
    tf = donkey.import_tensorflow()
    try:
        import keras
        keras3 = int(keras.__version__.split(".")[0]) >= 3
    except ImportError:
        keras3 = False
    if not keras3:
        return tf.lite.TFLiteConverter.from_keras_model(model)
    spec = [tf.TensorSpec(shape=(1,) + tuple(i.shape[1:]), dtype=tf.float32, name=i.name)
            for i in model.inputs]
    func = tf.function(model if len(spec) == 1 else (lambda *a: model(list(a))),
                       input_signature=spec)
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [func.get_concrete_function()], func)


def _write(data, out):
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        f.write(data)


def export_fp16(model, out):
    """MODEL with its weights stored as float16 (half the size); it computes in
    float32 on a CPU, so its outputs stay close to the .h5's."""
    tf = donkey.import_tensorflow()
    converter = tflite_converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    _write(converter.convert(), out)


def export_int8(model, frames, out):
    """MODEL quantized to 8-bit integers throughout (weights and activations),
    the ranges calibrated on FRAMES (each a list of the model's inputs, one
    frame, as the pilot feeds them). Its input and output stay float32, so
    DonkeyCar's TfLite pilot runs it unchanged."""
    import warnings

    import numpy as np
    tf = donkey.import_tensorflow()
    converter = tflite_converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [np.expand_dims(x, 0).astype(np.float32) for x in inputs] for inputs in frames)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():   # float input is what we ask for, not an oversight
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        data = converter.convert()
    _write(data, out)
