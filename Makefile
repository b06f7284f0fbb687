# robocar-trainer: `make demo` and `make test` set everything up on a fresh clone.
#   make install                      .venv with the toolkit (Python 3.11 -> DonkeyCar 5.3),
#                                     test tools and the optional wandb and report extras, so
#                                     tracking and the HTML reports are tested
#   make install PYTHON=python3.12 VENV=.venv-py312   another generation beside it
#   make install DONKEYCAR_SOURCE=SPEC VENV=.venv-fork   your own DonkeyCar (a fork, a branch,
#                                     a checkout) in place of PyPI's: docs/donkeycar-source.md
#   make demo     train on a generated tub in demo-car/ and print the result
#   make test     the test suite (pytest), the fast part; make lint: ruff + shellcheck
#   make e2e      the heavy end-to-end tests (marked e2e: separate venvs, images, long runs)
#   make integration PYTHON=python3.12 VENV=.venv-py312   the pipeline tests on 5.4
#   make gpu-check   on a machine with an NVIDIA GPU and `pip install tensorrt`: the TensorRT
#                    engine built, checked, timed and driven for real (bench/gpu_check.py)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCRIPTS := $(wildcard *.sh lib/*.sh)

# archive -> train -> export -> the car's runtime loads it: run again per generation
# (tracking too: each Python gets another wandb, see setup.py)
INTEGRATION := tests/test_train.py tests/test_legacy.py tests/test_tracking.py \
	tests/test_car.py tests/test_light_install.py tests/test_drive_run.py

.PHONY: install demo test e2e integration lint bench gpu-check clean browser
install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(if $(FORK_LOCK),PYTHONPATH=. $(PYTHON) -m trainer.core.donkeysource lock '$(DONKEYCAR_SOURCE)' $(LOCK) > $(FORK_LOCK))
	$(PY) -m pip install --quiet --disable-pip-version-check $(or $(FORK_LOCK:%=-c %),$(LOCK:%=-c %)) -e '.[train,test,wandb,report]'$(if $(FORK_LOCK), "$$(PYTHONPATH=. $(PYTHON) -m trainer.core.donkeysource requirement '$(DONKEYCAR_SOURCE)')")
	touch $(STAMP)

# The versions the tests passed with: the lock of the generation this Python
# installs (setup.py's markers; the table is trainer/core/generations.py's),
# as constraints when there is one.
GEN := $(shell PYTHONPATH=. $(PYTHON) -m trainer.core.generations here 2>/dev/null)
LOCK := $(wildcard locks/dk$(GEN).txt)
$(STAMP): $(LOCK)

# DONKEYCAR_SOURCE=SPEC (a version, 'donkeycar @ git+https://...@BRANCH', a
# checkout folder): that DonkeyCar in place of PyPI's, every other package at
# the lock's version: the lock derived for it ($(VENV)/donkeycar-lock.txt,
# trainer/core/donkeysource.py), and SPEC's requirement beside it. Installed
# again on each make install, so a branch or a checkout that moved on is
# picked up.
ifneq ($(strip $(DONKEYCAR_SOURCE)),)
ifeq ($(LOCK),)
$(error DONKEYCAR_SOURCE needs the lock of this Python's generation (locks/dk$(GEN).txt))
endif
FORK_LOCK := $(VENV)/donkeycar-lock.txt
.PHONY: $(STAMP)
endif

# Rewrite the lock files from the environments the tests ran in (.venv, and
# .venv-py312 for DonkeyCar 5.4 when it exists), the toolkit itself left out.
# To move to newer versions: remove the lock and the environment, then
# make install, make test, make lock.
lock:
	mkdir -p locks
	set -e; for venv in $(VENV) .venv-py312; do \
	  [ -x $$venv/bin/python ] || continue; \
	  gen=$$($$venv/bin/python -c 'import importlib.metadata as m; print(*m.version("donkeycar").split(".")[:2], sep=".")'); \
	  python=$$($$venv/bin/python -c 'import platform; print(platform.python_version())'); \
	  $$venv/bin/python -m pip freeze --exclude-editable > locks/.freeze; \
	  if grep -q -i '^donkeycar @' locks/.freeze; then rm locks/.freeze; \
	    echo "make lock: $$venv has a DonkeyCar of your own (DONKEYCAR_SOURCE): locks pin PyPI's" >&2; exit 1; fi; \
	  { echo "# DonkeyCar $$gen on Python $$python: written by make lock from $$venv (pip freeze)."; \
	    echo "# Constraints for setup.py's dependencies in the image (Dockerfile) and make install."; \
	    grep -v -i '^robocar-trainer==' locks/.freeze; \
	  } > locks/dk$$gen.txt; \
	  rm locks/.freeze; \
	  echo "locks/dk$$gen.txt: from $$venv"; \
	done

# The cloud jobs' image, built on this machine as robocar-trainer:dk5.3
# (make image DONKEYCAR=5.4 for the other generation); see docs/image.md.
# With DONKEYCAR_SOURCE=SPEC, the image of that DonkeyCar follows on top,
# robocar-trainer:dk5.3-<its content> (docs/donkeycar-source.md).
DONKEYCAR ?= 5.3
image:
	bash lib/local_image.sh -d $(DONKEYCAR)$(if $(strip $(DONKEYCAR_SOURCE)), -s '$(DONKEYCAR_SOURCE)')

.PHONY: lock image

demo: install
	TRAINER_PYTHON=$(abspath $(PY)) bash lib/demo.sh demo-car

# The fast suite in one process more than the cores (a third of its time
# is spent waiting on scripts, the emulators and the stand-ins: on 2 cores
# 3 processes took 432 s, 2 took about 505, 4 took 438), at most 4 (each
# may train), with pytest-xdist from the test extra; what the session
# trains once is shared between the processes (tests/trained.py).
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, (os.cpu_count() or 1) + 1))')
test: install browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not e2e" tests

# The heavy tests as many processes, a test file each (its fixtures build a
# venv, an image or a fork once): on 2 cores 3 took 351 s, 2 took 387-410.
e2e: install browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=12 -m e2e tests

# The reports' tests open their pages in Debian's chromium (headless); as
# root on Debian it is installed when missing, as lib/local_image.sh does podman.
APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { $(APT) || { apt-get update -q >/dev/null && $(APT); }; }; } || \
	  { echo "make: the tests need chromium: sudo apt-get install chromium (Debian)" >&2; exit 1; }

integration: install
	$(PY) -m pytest -q $(INTEGRATION)

lint: install
	$(VENV)/bin/ruff check --quiet trainer tests
	$(VENV)/bin/shellcheck -x $(SCRIPTS)

bench: install
	$(PY) bench/run.py

gpu-check: install
	$(PY) bench/gpu_check.py

clean:
	rm -rf demo-car build .pytest_cache .ruff_cache
