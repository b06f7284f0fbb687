"""An onnxruntime-backed DonkeyCar Interpreter.

DonkeyCar has no ONNX runtime of its own. With this interpreter any DonkeyCar
pilot runs an .onnx model through its own run(), so the three formats are
compared through exactly the code the car uses:

    pilot = onnx_pilot("linear", cfg, "models/pilot-wip.onnx")
    steering, throttle = pilot.run(image)
"""
import numpy as np

from trainer import donkey


def onnx_pilot(model_type, cfg, path):
    """DonkeyCar's pilot for MODEL_TYPE, running the .onnx at PATH."""
    donkey.quiet()
    from donkeycar.utils import get_model_by_type
    # The tflite_ variant builds no Keras graph; its interpreter is swapped.
    pilot = get_model_by_type("tflite_" + model_type, cfg)
    pilot.interpreter = _interpreter_class()()
    pilot.interpreter.set_model(pilot)
    pilot.load(path)
    return pilot


def _interpreter_class():
    """OnnxInterpreter, defined on first use: its base class is DonkeyCar's."""
    import onnxruntime as ort
    from donkeycar.parts.interpreter import Interpreter

    class OnnxInterpreter(Interpreter):
        def __init__(self):
            super().__init__()
            self.session = None

        def load(self, model_path):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1   # batch 1 on the car: one thread is fastest
            self.session = ort.InferenceSession(model_path, options,
                                                providers=["CPUExecutionProvider"])
            self.input_keys = [i.name for i in self.session.get_inputs()]
            self.output_keys = [o.name for o in self.session.get_outputs()]

        def compile(self, **kwargs):
            pass

        def get_input_shape(self, input_name):
            for i in self.session.get_inputs():
                if i.name == input_name:
                    return i.shape
            raise RuntimeError(f"{input_name} not found in the ONNX model")

        def predict_from_dict(self, input_dict):
            feed = {k: np.expand_dims(v, axis=0).astype(np.float32)
                    for k, v in input_dict.items()}
            outputs = self.session.run(self.output_keys, feed)
            ret = [o[0] for o in outputs]
            return ret if len(ret) > 1 else ret[0]

    return OnnxInterpreter
