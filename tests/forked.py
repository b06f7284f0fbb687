"""A DonkeyCar fork as a racing team makes one, for tests/test_fork.py: the
source distribution of the locked release from the package index, with a
model type of its own added to get_model_by_type.

    checkout, fork = make_fork(tmp / "src")   # the release as it is, and the fork

`race` is structurally its own: three convolutions with max pooling, one
dense layer and one tanh head that gives steering and throttle together
(stock types have five strided convolutions with dropout, two dense layers
and one output each). `squash`
is `race` with a layer class of the fork's that Keras cannot load back from
an .h5 (not registered), as a fork may well have: its exports fail.
"""
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from helpers import ROOT

RACE = '''"""The team's own model types (added by the fork)."""
import tensorflow as tf
from tensorflow.keras import Model, layers

from donkeycar.parts.keras import KerasPilot


class KerasRace(KerasPilot):
    """Steering and throttle from one tanh head over a small pooled CNN."""

    def create_model(self):
        img_in = layers.Input(shape=self.input_shape, name='img_in')
        x = img_in
        for i, (filters, kernel) in enumerate(((16, 5), (32, 3), (32, 3))):
            x = layers.Conv2D(filters, kernel, strides=2 if i == 0 else 1,
                              activation='relu', name=f'race_conv{i}')(x)
            x = layers.MaxPooling2D(2, name=f'race_pool{i}')(x)
        x = layers.Flatten(name='race_flat')(x)
        x = layers.Dense(32, activation='relu', name='race_dense')(x)
        return Model(inputs=[img_in], outputs=[self.head(x)], name='race')

    def head(self, x):
        return layers.Dense(2, activation='tanh', name='race_out')(x)

    def compile(self):
        self.interpreter.compile(optimizer=self.optimizer, loss='mse')

    def interpreter_to_output(self, interpreter_out):
        return float(interpreter_out[0]), float(interpreter_out[1])

    def y_transform(self, record):
        return {'race_out': [record.underlying['user/angle'],
                             record.underlying['user/throttle']]}

    def output_shapes(self):
        img_shape = self.get_input_shape('img_in')[1:]
        return ({'img_in': tf.TensorShape(img_shape)},
                {'race_out': tf.TensorShape([2])})


class Squash(layers.Layer):
    """The fork's own layer, not registered with Keras: an .h5 holding it
    does not load back."""

    def call(self, x):
        return tf.tanh(x) * 0.9


class KerasSquash(KerasRace):
    def head(self, x):
        return Squash(name='race_out')(layers.Dense(2, name='race_pre')(x))
'''

BRANCHES = '''    elif used_model_type == "race":
        from donkeycar.parts.keras_race import KerasRace
        kl = KerasRace(interpreter=interpreter, input_shape=input_shape)
    elif used_model_type == "squash":
        from donkeycar.parts.keras_race import KerasSquash
        kl = KerasSquash(interpreter=interpreter, input_shape=input_shape)
'''


def locked_version():
    """The DonkeyCar version locks/dk5.3.txt pins."""
    text = (Path(ROOT) / "locks" / "dk5.3.txt").read_text()
    return re.search(r"^donkeycar==(\S+)$", text, re.M).group(1)


def download_sdist(into):
    """DonkeyCar's own source distribution of the locked release, from the index."""
    into.mkdir(parents=True, exist_ok=True)
    version = locked_version()
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", f"donkeycar=={version}", "-d", str(into)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    [sdist] = into.glob(f"donkeycar-{version}.tar.gz")
    return sdist


def make_fork(into):
    """(the release unpacked as it is, the fork): two checkout folders."""
    sdist = download_sdist(into / "sdist")
    with tarfile.open(sdist) as tar:
        tar.extractall(into / "unpacked", filter="data")
    [checkout] = (into / "unpacked").iterdir()
    fork = into / "fork"
    shutil.copytree(checkout, fork)
    (fork / "donkeycar" / "parts" / "keras_race.py").write_text(RACE)
    utils = fork / "donkeycar" / "utils.py"
    text = utils.read_text()
    anchor = "    elif used_model_type == '3d':\n"
    assert text.count(anchor) == 1, "get_model_by_type changed: adapt the fork"
    utils.write_text(text.replace(anchor, BRANCHES + anchor))
    return checkout, fork
