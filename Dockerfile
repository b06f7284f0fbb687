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
# setup.py is the one list of dependencies (with the wandb extra, so a job
# tracks its run when WANDB_PROJECT is passed). The only addition is TensorFlow's
# CUDA libraries as pip wheels (the [and-cuda] extra), at the TensorFlow
# version that DonkeyCar generation pins, so the job trains on the GPU; Vertex
# AI supplies the NVIDIA driver. Without a GPU (-g none) it runs on the CPU.
ARG PYTHON=3.11
FROM python:${PYTHON}-slim-bookworm
# The generation the image's tag promises (dk5.3, dk5.4); checked below.
ARG DONKEYCAR=5.3

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/robocar-trainer
COPY setup.py ./
COPY trainer/ trainer/
# Fail the build, not a paid job, when the package cannot start or the
# DonkeyCar installed is not the generation asked for.
RUN pip install ".[wandb]" \
        "tensorflow[and-cuda]==2.15.*; python_version < '3.12'" \
        "tensorflow[and-cuda]==2.19.*; python_version >= '3.12'" \
 && python -m trainer.task --help > /dev/null \
 && python -m trainer.movie --help > /dev/null \
 && python -c "import donkeycar, tensorflow, tf2onnx, onnxruntime, google.cloud.storage, wandb" \
 && generation=$(python -c "from trainer.donkey import GENERATION; print(GENERATION)") \
 && if [ "$generation" != "$DONKEYCAR" ]; then \
      echo "DonkeyCar $generation was installed, not $DONKEYCAR: check PYTHON" >&2; exit 1; \
    fi

# Each job works in a scratch folder of its own.
WORKDIR /tmp
CMD ["python", "-m", "trainer.task", "--help"]
