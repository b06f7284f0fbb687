"""The small parsers of the training job (URIs: test_storage.py)."""
import pytest

from trainer.config import parse_overrides
from trainer.errors import UserError
from trainer.training import default_model_name


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
