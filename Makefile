# robocar-trainer: `make demo` and `make test` set everything up on a fresh clone.
#   make install                      .venv with the toolkit (Python 3.11 -> DonkeyCar 5.3),
#                                     test tools and the optional wandb extra, so tracking is tested
#   make install PYTHON=python3.12 VENV=.venv-py312   another generation beside it
#   make demo     train on a generated tub in demo-car/ and print the result
#   make test     the test suite (pytest); make lint: ruff + shellcheck
#   make integration PYTHON=python3.12 VENV=.venv-py312   the pipeline tests on 5.4
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCRIPTS := $(wildcard *.sh) lib/common.sh lib/demo.sh

# archive -> train -> export -> the car's runtime loads it: run again per generation
# (tracking too: each Python gets another wandb, see setup.py)
INTEGRATION := tests/test_train.py tests/test_legacy.py tests/test_tracking.py

.PHONY: install demo test integration lint bench clean
install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,wandb]'
	touch $(STAMP)

demo: install
	TRAINER_PYTHON=$(abspath $(PY)) bash lib/demo.sh demo-car

test: install
	$(PY) -m pytest -q tests

integration: install
	$(PY) -m pytest -q $(INTEGRATION)

lint: install
	$(VENV)/bin/ruff check --quiet trainer tests
	$(VENV)/bin/shellcheck -x $(SCRIPTS)

bench: install
	$(PY) bench/run.py

clean:
	rm -rf demo-car build .pytest_cache .ruff_cache
