# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean system-deps

setup: $(STAMP)

# Python packages into .venv, pinned by constraints.txt; the pgserver wheel only where the
# machine has no PostgreSQL server binaries of its own.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e '.[dev]'
	if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		$(BIN)/python -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e '.[dev,embedded]'; fi
	touch $(STAMP)

# Debian packages the tests need, installed with apt-get where they are missing.
system-deps:
	bash .ci/system-deps

demo: setup system-deps
	$(BIN)/opsconsole demo

# Two workers (the machine's two cores), a test file's tests on one worker (its fixtures
# are per file): about half the time of one.
test: setup system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m pytest -q -s tests/bench

clean:
	rm -rf $(VENV) build *.egg-info
