"""Exports of a trained .h5: .tflite (DonkeyCar's converter), .onnx (tf2onnx).

    export_tflite("models/x.h5", "models/x.tflite")
    export_onnx(model, "models/x.onnx")    # model: the loaded Keras model

Keras 2 (DonkeyCar 5.3) and Keras 3 (5.4) write different .h5 files; a
Keras 3 file loads with `keras`, a Keras 2 one with `tf.keras`.
"""
import tensorflow as tf

from trainer.donkey import donkeycar  # noqa: F401
from donkeycar.parts.interpreter import keras_model_to_tflite  # noqa: E402

ONNX_OPSET = 13


def load_keras(path):
    try:
        import keras
        if int(keras.__version__.split(".")[0]) >= 3:
            return keras.models.load_model(path, compile=False)
    except ImportError:
        pass
    return tf.keras.models.load_model(path, compile=False)


def check_input_size(path, cfg, what, fix):
    """Refuse a .h5 that cannot load, or whose frames differ from the config's
    (IMAGE_W x IMAGE_H x IMAGE_DEPTH): DonkeyCar would only fail mid-run."""
    from trainer.errors import UserError
    try:
        model = load_keras(path)
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
    keras_model_to_tflite(h5, out)


def export_onnx(model, out):
    """Convert the Keras MODEL (the h5 pilot's, loaded once) to ONNX at OUT."""
    import tf2onnx

    spec = tuple(tf.TensorSpec(i.shape, tf.float32, name=i.name.split(":")[0])
                 for i in model.inputs)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=ONNX_OPSET,
                               output_path=out)
