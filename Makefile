# The two commands: `make run` and `make test`. Both bootstrap .venv from the lock file.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make bench ARGS=ledger` runs only the named benchmarks (bench/<name>.py).
ARGS ?=

.PHONY: run test bench lint format lock clean

$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements.lock
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m tools.run

test: $(STAMP)
	$(PY) -m tools.test

bench: $(STAMP)
	$(PY) -m tools.bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: $(STAMP)
	$(VENV)/bin/uv pip compile --quiet --python $(PY) pyproject.toml --extra dev -o requirements.lock

clean:
	rm -rf $(VENV) var/staticfiles
