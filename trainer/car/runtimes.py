"""The runtimes a car may have beyond DonkeyCar's own: onnxruntime's GPU
providers and TensorRT. Found here, used by the car's check and drive.sh.

    providers = onnx_providers("models")   # TensorRT (FP16, engines cached), CUDA, then the CPU
    why = tensorrt_missing()               # None where TensorRT's Python package imports
    built = build_engine("models/x.onnx", "models/x.engine")   # {"fp16": True, "seconds": ...}
    pilot = pilots.load_pilot("engine", "linear", cfg, "models/x.engine", engine_interpreter())

A TensorRT engine is tied to the GPU and the TensorRT version that built it,
so the car builds it, from the .onnx (exported at opset 13, which TensorRT
8.2 reads), in FP16 where the GPU computes FP16 fast, for batch 1 as the
pilot runs. It runs from DonkeyCar's Python through TensorRT's Python
package (the tensor API of TensorRT 8.5 and later) with CUDA's runtime
library (libcudart) reached through ctypes, so nothing compiled has to
match the car's Python beyond TensorRT's own package. On a Jetson that is
the catch: JetPack's TensorRT package is built for its system Python (3.6,
3.8, 3.10), DonkeyCar 5 needs 3.11 or later: see docs/car.md, TensorRT.
"""
import ctypes
import ctypes.util
import importlib.util
import os
import platform
import time

from trainer.core.errors import UserError
from trainer.core.storage import atomic_path

WORKSPACE = 1 << 28        # 256 MiB of GPU memory for TensorRT's tactics: a Nano has 4 GB
TRT_CACHE = ".trt-cache"   # onnxruntime's TensorRT engines, beside the models


def onnx_providers(models):
    """onnxruntime's execution providers for the car, best first: TensorRT
    (FP16, its engines cached in MODELS/.trt-cache, built once), CUDA, the
    CPU; only those this onnxruntime has."""
    import onnxruntime as ort
    have = set(ort.get_available_providers())
    wanted = [("TensorrtExecutionProvider",
               {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                "trt_engine_cache_path": os.path.join(models, TRT_CACHE)}),
              ("CUDAExecutionProvider", {}), ("CPUExecutionProvider", {})]
    return [(name, options) for name, options in wanted if name in have]


def tensorrt_missing():
    """Why no TensorRT engine can be built here, or None."""
    if importlib.util.find_spec("tensorrt") is None:
        return (f"TensorRT's Python package (tensorrt) is not installed for this Python "
                f"({platform.python_version()}); on a Jetson, JetPack's is for its system "
                "Python only (docs/car.md, TensorRT)")
    return None


def build_engine(onnx_path, engine_path, fp16=None):
    """Build ENGINE_PATH from the ONNX model at ONNX_PATH with TensorRT, for
    batch 1; FP16 where the GPU does it fast (FP16 None), or as FP16 says.
    Returns {"fp16", "seconds", "tensorrt"}."""
    import tensorrt as trt
    start = time.time()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    explicit = int(trt.__version__.split(".")[0]) < 10     # the default from TensorRT 10
    network = builder.create_network(
        1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if explicit else 0)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise UserError(f"TensorRT {trt.__version__} cannot read {onnx_path} "
                            f"({errors[:200]}): drive the .onnx or the .tflite")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE)
    fp16 = getattr(builder, "platform_has_fast_fp16", True) if fp16 is None else fp16
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):            # the batch dimension: 1, as driven
        tensor = network.get_input(i)
        shape = tuple(1 if d < 0 else d for d in tensor.shape)
        profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise UserError(f"TensorRT {trt.__version__} could not build an engine from "
                        f"{onnx_path} (its log above says why): drive the .onnx or the "
                        ".tflite")
    with atomic_path(engine_path) as tmp, open(tmp, "wb") as f:
        f.write(bytes(data))
    return {"fp16": bool(fp16), "seconds": round(time.time() - start, 1),
            "tensorrt": trt.__version__}


def engine_interpreter():
    """A DonkeyCar Interpreter running a TensorRT engine (load(path) reads it)."""
    return _engine_class()()


def _engine_class():
    """EngineInterpreter, defined on first use: its base class is DonkeyCar's."""
    import numpy as np
    from donkeycar.parts.interpreter import Interpreter

    class EngineInterpreter(Interpreter):
        runtime = "tensorrt"

        def load(self, model_path):
            import tensorrt as trt
            self.trt = trt
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            with open(model_path, "rb") as f:
                self.engine = runtime.deserialize_cuda_engine(f.read())
            if self.engine is None:
                raise RuntimeError(f"TensorRT {trt.__version__} cannot read {model_path}: "
                                   "an engine from another TensorRT or GPU (check_model.sh "
                                   "builds it again)")
            self.cuda = Cuda()
            self.context = self.engine.create_execution_context()
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            inputs = [n for n in names
                      if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            for n in inputs:
                shape = tuple(1 if d < 0 else d for d in self.engine.get_tensor_shape(n))
                self.context.set_input_shape(n, shape)
            self.input_keys = inputs
            self.output_keys = [n for n in names if n not in inputs]
            self.host, self.device = {}, {}
            for n in names:           # one host and one GPU buffer per tensor, kept
                dtype = trt.nptype(self.engine.get_tensor_dtype(n))
                self.host[n] = np.zeros(tuple(self.context.get_tensor_shape(n)), dtype)
                self.device[n] = self.cuda.malloc(self.host[n].nbytes)
                self.context.set_tensor_address(n, self.device[n])
            self.stream = self.cuda.stream()

        def compile(self, **kwargs):
            pass

        def get_input_shape(self, input_name):
            return tuple(self.engine.get_tensor_shape(input_name))

        def predict_from_dict(self, input_dict):
            for k, v in input_dict.items():
                np.copyto(self.host[k], np.expand_dims(v, 0).astype(self.host[k].dtype))
                self.cuda.copy(self.device[k], self.host[k], to_device=True,
                               stream=self.stream)
            self.context.execute_async_v3(self.stream)
            for k in self.output_keys:
                self.cuda.copy(self.host[k], self.device[k], to_device=False,
                               stream=self.stream)
            self.cuda.synchronize(self.stream)
            ret = [self.host[k][0].copy() for k in self.output_keys]
            return ret if len(ret) > 1 else ret[0]

    return EngineInterpreter


class Cuda:
    """The few calls of CUDA's runtime library an engine needs, through ctypes."""
    HOST_TO_DEVICE, DEVICE_TO_HOST = 1, 2

    def __init__(self):
        self.lib = _cudart()
        p, size = ctypes.c_void_p, ctypes.c_size_t
        self.lib.cudaMalloc.argtypes = [ctypes.POINTER(p), size]
        self.lib.cudaMemcpyAsync.argtypes = [p, p, size, ctypes.c_int, p]
        self.lib.cudaStreamCreate.argtypes = [ctypes.POINTER(p)]
        self.lib.cudaStreamSynchronize.argtypes = [p]

    def _ok(self, status, what):
        if status != 0:
            raise RuntimeError(f"CUDA's {what} failed (error {status})")

    def malloc(self, nbytes):
        ptr = ctypes.c_void_p()
        self._ok(self.lib.cudaMalloc(ctypes.byref(ptr), nbytes), "cudaMalloc")
        return ptr.value

    def stream(self):
        handle = ctypes.c_void_p()
        self._ok(self.lib.cudaStreamCreate(ctypes.byref(handle)), "cudaStreamCreate")
        return handle.value

    def copy(self, dst, src, to_device, stream):
        """SRC to DST: a host array to a GPU address (TO_DEVICE), or back."""
        if to_device:
            args = (dst, src.ctypes.data, src.nbytes, self.HOST_TO_DEVICE)
        else:
            args = (dst.ctypes.data, src, dst.nbytes, self.DEVICE_TO_HOST)
        self._ok(self.lib.cudaMemcpyAsync(*args, stream), "cudaMemcpyAsync")

    def synchronize(self, stream):
        self._ok(self.lib.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


def _cudart():
    """CUDA's runtime library: the system's (JetPack: /usr/local/cuda), else
    the one pip's TensorRT brings (nvidia-cuda-runtime)."""
    names = [ctypes.util.find_library("cudart"), "libcudart.so", "libcudart.so.12",
             "libcudart.so.11.0", "libcudart.so.10.2", "/usr/local/cuda/lib64/libcudart.so"]
    spec = importlib.util.find_spec("nvidia.cuda_runtime") \
        if importlib.util.find_spec("nvidia") else None
    for folder in (spec.submodule_search_locations if spec else []):
        lib = os.path.join(folder, "lib")
        names += [os.path.join(lib, f) for f in sorted(os.listdir(lib))
                  if f.startswith("libcudart.so")] if os.path.isdir(lib) else []
    for name in filter(None, names):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise RuntimeError("CUDA's runtime library (libcudart) was not found: install "
                       "CUDA (JetPack has it), or pip install nvidia-cuda-runtime-cu12")
