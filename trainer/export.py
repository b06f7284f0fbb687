"""Exports of a trained .h5: .tflite (DonkeyCar's converter), .onnx (tf2onnx).

    export_tflite("models/x.h5", "models/x.tflite")
    export_onnx("models/x.h5", "models/x.onnx")

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


def export_tflite(h5, out):
    keras_model_to_tflite(h5, out)


def export_onnx(h5, out):
    import tf2onnx

    model = load_keras(h5)
    spec = tuple(tf.TensorSpec(i.shape, tf.float32, name=i.name.split(":")[0])
                 for i in model.inputs)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=ONNX_OPSET,
                               output_path=out)
