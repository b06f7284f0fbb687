"""The small parsers everything else leans on."""
import pytest

from trainer.config import parse_overrides
from trainer.errors import UserError
from trainer.storage import Location, join, parse_uri
from trainer.training import default_model_name


def test_parse_uri():
    assert parse_uri("gs://b/training/wip.tgz") == Location("gs", "b", "training/wip.tgz")
    assert parse_uri("gs://b") == Location("gs", "b", "")
    assert parse_uri("models/x.h5") == Location("file", "", "models/x.h5")
    assert parse_uri("gs://b/models/x.h5").name == "x.h5"
    for bad in ("gs:///x", "s3://b/x", ""):
        with pytest.raises(UserError):
            parse_uri(bad)


def test_join():
    assert join("gs://b/models", "x.h5") == "gs://b/models/x.h5"
    assert join("gs://b/models/", "x.h5") == "gs://b/models/x.h5"
    assert join("gs://b", "x.h5") == "gs://b/x.h5"
    assert join("models", "x.h5") == "models/x.h5"


def test_overrides_are_python_literals_or_strings():
    assert parse_overrides(["MAX_EPOCHS=3", "DEFAULT_MODEL_TYPE=linear",
                            "AUGMENTATIONS=['MULTIPLY']", "USE_EARLY_STOP=False"]) == {
        "MAX_EPOCHS": 3, "DEFAULT_MODEL_TYPE": "linear",
        "AUGMENTATIONS": ["MULTIPLY"], "USE_EARLY_STOP": False}
    for bad in ("MAX_EPOCHS", "max_epochs=3", "=3"):
        with pytest.raises(UserError):
            parse_overrides([bad])


def test_default_model_name():
    assert default_model_name("wip.tgz") == "pilot-wip"
    assert default_model_name("gs://b/training/laps.tar.gz") == "pilot-laps"
