"""DonkeyCar's own pilots for each format a model comes in, and one runner
for them: the training job's parity check and evaluation, the car's check
and drive.sh run frames through exactly the code the car drives with.

    pilot = load_pilot("tflite", "linear", cfg, "models/pilot-wip.tflite")
    outputs, latency = run_pilot(pilot, images)   # [[steering, throttle], ...], median s

- .h5: DonkeyCar's Keras pilot; needs TensorFlow.
- .tflite, and its fp16 and int8 variants: DonkeyCar's tflite_ pilot, with
  whatever TFLite runtime DonkeyCar finds (tflite-runtime, ai-edge-litert,
  then TensorFlow): a Raspberry Pi runs them without TensorFlow.
- .onnx: DonkeyCar has no ONNX runtime; its tflite_ pilot (which builds no
  Keras graph) gets the OnnxInterpreter below, over onnxruntime, with the
  execution providers asked for (the car's: car/runtimes.py).
- .engine (TensorRT, built on the car): the same pilot with the interpreter
  the caller gives (car/runtimes.py EngineInterpreter).

Nothing heavy is imported before it is used: the car imports this module
with DonkeyCar alone.
"""
import time

from trainer.core import bucket, donkey

TFLITE_FAMILY = ("tflite", "fp16", "int8")     # DonkeyCar's TfLite pilot runs them all
CPU = "CPUExecutionProvider"


def _parts():
    """DonkeyCar's model parts import TensorFlow when it is installed: started
    quietly first (its start-up lines), or not at all on a car without it."""
    donkey.quiet()
    try:
        donkey.import_tensorflow()
    except ImportError:
        pass


def runtime_missing(fmt):
    """Why a FMT model cannot run here ('TensorFlow is not installed'), or None."""
    _parts()
    if fmt == "h5":
        try:
            donkey.import_tensorflow()
        except ImportError:
            return "TensorFlow is not installed here (a .h5 needs it; a .tflite does not)"
    elif fmt in TFLITE_FAMILY:
        from donkeycar.parts.interpreter import get_tflite_interpreter
        try:
            get_tflite_interpreter()
        except ImportError:
            return ("no TFLite runtime is installed here: pip install ai-edge-litert "
                    "(or tflite-runtime)")
    elif fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed here: pip install onnxruntime"
    return None


def shown(fmt):
    """How a format is named to the user: 'int8 .tflite', '.onnx'."""
    if fmt in ("fp16", "int8"):
        return f"{fmt} {bucket.TFLITE}"
    if fmt == "tflite":
        return f"float {bucket.TFLITE}"
    if fmt == "engine":
        return f"TensorRT {bucket.ENGINE}"
    return bucket.CAR_FORMATS[fmt]


def pilot_for(fmt, model_type, cfg, interpreter=None):
    """DonkeyCar's pilot for MODEL_TYPE ('linear') in format FMT, not loaded
    yet. A .onnx or .engine pilot is DonkeyCar's tflite_ one (no Keras graph
    built) with INTERPRETER (default for .onnx: an OnnxInterpreter on the CPU)."""
    _parts()
    from donkeycar.utils import get_model_by_type
    if fmt == "h5":
        donkey.import_tensorflow()
        return get_model_by_type(model_type, cfg)
    pilot = get_model_by_type("tflite_" + model_type, cfg)
    if interpreter is None and fmt == "onnx":
        interpreter = onnx_interpreter()
    if interpreter is not None:
        pilot.interpreter = interpreter
        interpreter.set_model(pilot)
    return pilot


def load_pilot(fmt, model_type, cfg, path, interpreter=None):
    """DonkeyCar's pilot for MODEL_TYPE ('linear') running the FMT model at PATH."""
    pilot = pilot_for(fmt, model_type, cfg, interpreter)
    pilot.load(path)
    return pilot


def runtime_name(fmt, pilot):
    """Which runtime ran PILOT's FMT model: 'ai_edge_litert', 'tflite_runtime',
    'tensorflow', 'onnxruntime' (on the CPU; 'onnxruntime+CUDA' with another
    provider), 'tensorrt'."""
    if fmt == "h5":
        return "tensorflow"
    described = getattr(pilot.interpreter, "runtime", None)
    if described:
        return described
    inner = getattr(pilot.interpreter, "interpreter", None)
    return type(inner).__module__.split(".")[0] if inner is not None else "?"


def _extra_inputs(pilot):
    """Zeros for a pilot's inputs besides the image (IMU, behaviour state).
    DonkeyCar describes them with TensorFlow's TensorShape: without
    TensorFlow (a Pi), a camera-only pilot has none to add."""
    import numpy as np
    try:
        shapes = pilot.output_shapes()[0] if hasattr(pilot, "output_shapes") else {}
    except AttributeError:          # donkeycar.parts.keras' tf is None
        return []
    return [np.zeros(s, dtype=np.float32) for k, s in shapes.items()
            if k not in ("img_in", "mem_in")]


def run_pilot(pilot, images):
    """(outputs [[steering, throttle], ...], median seconds a frame) of PILOT
    on IMAGES, one at a time as the drive loop calls it."""
    import numpy as np
    extra = _extra_inputs(pilot)
    preds, times = [], []
    for img in images:
        t = time.perf_counter()
        out = pilot.run(img, *extra)
        times.append(time.perf_counter() - t)
        preds.append([float(np.ravel(out[0])[0]), float(np.ravel(out[1])[0])])
    return np.array(preds), float(np.median(times)) if times else 0.0


def onnx_interpreter(providers=None):
    """An OnnxInterpreter over onnxruntime with PROVIDERS (onnxruntime's list:
    names or (name, options); default the CPU's)."""
    return _onnx_interpreter_class()(providers or [CPU])


def _onnx_interpreter_class():
    """OnnxInterpreter, defined on first use: its base class is DonkeyCar's."""
    import numpy as np
    import onnxruntime as ort
    from donkeycar.parts.interpreter import Interpreter

    class OnnxInterpreter(Interpreter):
        def __init__(self, providers):
            super().__init__()
            self.session, self.providers, self.runtime = None, providers, "onnxruntime"

        def load(self, model_path):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1   # batch 1 on the car: one thread is fastest
            self.session = ort.InferenceSession(model_path, options,
                                                providers=self.providers)
            used = self.session.get_providers()[0]
            if used != CPU:                     # TensorrtExecutionProvider -> +TensorRT
                self.runtime = f"onnxruntime+{used.replace('ExecutionProvider', '')}"
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
