"""A FAKE of NVIDIA's `tensorrt` Python package, for the tests only: there is
no GPU and no TensorRT here. Put this folder first on PYTHONPATH and the
car's engine path (trainer/car/runtimes.py) runs up to TensorRT's own calls,
which this fake answers as far as building goes:

- the ONNX file is read for real (the `onnx` package) to give the network
  its inputs, so the optimization profile the code sets can be checked;
- build_serialized_network returns no engine but a JSON record of what was
  asked (FP16 or not, the workspace, the profile's shapes), which the code
  writes as NAME.engine and the test reads back;
- running an engine needs a GPU: Runtime() raises, as a machine without
  one would stop there.

Only the calls runtimes.py makes exist here. The real build and run are
checked on a machine with a GPU by `make gpu-check` (bench/gpu_check.py).
"""
import json

__version__ = "10.0.0-fake"
_asked = {}


class Logger:
    WARNING = 2

    def __init__(self, severity=None):
        self.severity = severity


class NetworkDefinitionCreationFlag:
    EXPLICIT_BATCH = 0


class BuilderFlag:
    FP16 = "FP16"


class MemoryPoolType:
    WORKSPACE = "WORKSPACE"


class _Tensor:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


class _Network:
    def __init__(self):
        self.inputs = []

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, i):
        return self.inputs[i]


class OnnxParser:
    def __init__(self, network, logger):
        self.network, self.num_errors = network, 0

    def parse(self, data):
        import onnx
        graph = onnx.load_from_string(data).graph
        self.network.inputs = [_Tensor(i.name, tuple(d.dim_value or -1 for d in
                                                      i.type.tensor_type.shape.dim))
                               for i in graph.input]
        return True


class _Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, lowest, best, highest):
        self.shapes[name] = [list(lowest), list(best), list(highest)]


class _Config:
    def __init__(self):
        self.flags, self.pools, self.profiles = [], {}, []

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def set_flag(self, flag):
        self.flags.append(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile.shapes)


class Builder:
    platform_has_fast_fp16 = True

    def __init__(self, logger):
        pass

    def create_network(self, flags=0):
        return _Network()

    def create_builder_config(self):
        return _Config()

    def create_optimization_profile(self):
        return _Profile()

    def build_serialized_network(self, network, config):
        return json.dumps({"fake engine": __version__, "flags": config.flags,
                           "workspace": config.pools.get(MemoryPoolType.WORKSPACE),
                           "profiles": config.profiles}).encode()


class Runtime:
    def __init__(self, logger):
        raise RuntimeError("fake tensorrt (tests/fake_tensorrt): no GPU here to run an "
                           "engine on")
