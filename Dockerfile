# The image Vertex AI jobs run (submit_cloud_train.sh, submit_cloud_makemovie.sh);
# built and pushed by ./build_image.sh with Cloud Build (cloudbuild.yaml), no
# local Docker needed. Each job states its command itself:
#   python -m trainer.task --archive gs://BUCKET/training/wip.tgz --output gs://BUCKET/models
#   python -m trainer.movie --archive ... --model ... --output gs://BUCKET/movies/NAME.mp4
#
# One image per DonkeyCar generation, so a model trained here loads on a car
# running the same one. The Python picks it through setup.py's markers:
#   --build-arg PYTHON=3.11 DONKEYCAR=5.3   TensorFlow 2.15, Keras 2 (the default)
#   --build-arg PYTHON=3.12 DONKEYCAR=5.4   TensorFlow 2.19, Keras 3
# setup.py is the one list of dependencies (its train extra, and wandb, so a
# job tracks its run when WANDB_PROJECT is passed), installed at the versions
# of the generation's lock file (locks/dk5.3.txt, locks/dk5.4.txt: what the
# tests passed with, written by `make lock`). The only addition is TensorFlow's
# CUDA libraries as pip wheels (the [and-cuda] extra), at the TensorFlow
# version that DonkeyCar generation pins, so the job trains on the GPU; Vertex
# AI supplies the NVIDIA driver (mounted at /usr/local/nvidia, see below).
# Without a GPU (-g none) it runs on the CPU.
# `make image` builds it on your machine (docs/image.md).
ARG PYTHON=3.11
FROM python:${PYTHON}-slim-bookworm
# The generation the image's tag promises (dk5.3, dk5.4); checked below.
ARG DONKEYCAR=5.3

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/robocar-trainer
# The dependencies, in a layer of their own (about 3 GB with the CUDA wheels)
# that a change to trainer/ leaves alone. setup.py reads only the package's
# version from trainer/, so a stand-in package is enough to resolve them, and
# it is removed again.
COPY setup.py ./
COPY locks/dk${DONKEYCAR}.txt locks/
RUN mkdir trainer && echo '__version__ = "0"' > trainer/__init__.py \
 && pip install -c locks/dk${DONKEYCAR}.txt ".[train,wandb]" \
        "tensorflow[and-cuda]==2.15.*; python_version < '3.12'" \
        "tensorflow[and-cuda]==2.19.*; python_version >= '3.12'" \
 && pip uninstall --yes robocar-trainer \
 && rm -rf trainer build ./*.egg-info

# Vertex AI (like GKE) mounts the host's NVIDIA driver at /usr/local/nvidia
# (lib64/libcuda.so.1, bin/nvidia-smi); nothing in a python base looks there,
# so TensorFlow would not load libcuda.so.1 and every GPU job would stop at
# its GPU check. NVIDIA's CUDA base images set exactly these two variables.
# Here, after the dependencies, so that changing them rebuilds only the small
# layers below (tests/test_image.py proves the driver is found).
ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    PATH=/usr/local/nvidia/bin:${PATH}

# The toolkit itself: a small layer, rebuilt in seconds when trainer/ changes.
COPY trainer/ trainer/
# Fail the build, not a paid job, when the package cannot start or the
# DonkeyCar installed is not the generation asked for.
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info \
 && python -m trainer.task --help > /dev/null \
 && python -m trainer.movie --help > /dev/null \
 && python -c "import donkeycar, tensorflow, tf2onnx, onnxruntime, google.cloud.storage, wandb" \
 && generation=$(python -c "import importlib.metadata as m; print(*m.version('donkeycar').split('.')[:2], sep='.')") \
 && if [ "$generation" != "$DONKEYCAR" ]; then \
      echo "DonkeyCar $generation was installed, not $DONKEYCAR: check PYTHON" >&2; exit 1; \
    fi

# Each job works in a scratch folder of its own.
WORKDIR /tmp
CMD ["python", "-m", "trainer.task", "--help"]
