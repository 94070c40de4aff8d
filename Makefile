# Every target a developer needs; CI runs `make test` exactly as written here.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py

.PHONY: install run test lint typecheck imports markers pytest services translations fmt docs clean messages \
	bench bench-scale bench-faults bench-profile

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed translations

## Compile the message catalogues (the .mo files are build output, not committed).
translations: $(BIN)/.installed
	@if ls app/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
		$(BIN)/pybabel -q compile -d app/translations; fi

## Serve on http://127.0.0.1:5000 with SQLite and an in-process cache, after creating a demo user.
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask user demo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

services:
	@bash scripts/services.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

## The layers of docs/architecture.md: no import points up, no blueprint imports another.
imports: $(BIN)/.installed
	$(BIN)/lint-imports

## app/ holds no work-in-progress markers or suppressed warnings.
markers:
	@if grep -rnE 'TODO|FIXME|XXX|HACK|noqa|type: *ignore' app/; then \
		echo "markers: remove the lines above from app/" >&2; exit 1; fi

pytest: install services
	$(BIN)/pytest --cov=app --cov-report=term --cov-fail-under=90

test: install lint typecheck imports markers pytest

fmt: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerate files derived from the preference registry and the message catalogues.
docs: $(BIN)/.installed
	$(BIN)/flask preferences docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov

## Re-extract translatable strings and merge them into every catalogue.
messages: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l -k lazy_pgettext:1c,2 --no-location --sort-output \
		-o app/translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i app/translations/messages.pot -d app/translations

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

## Throughput and latency of each scenario against the floor (docs/performance.md).
bench: install services $(BIN)/.bench-installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Where each scenario's time goes: round trips per request and a cProfile of each.
bench-profile: install services $(BIN)/.bench-installed
	$(BIN)/python -m bench.profile $(BENCH_ARGS)

## The same with a million users, compared with ten thousand in the same run.
bench-scale: install services $(BIN)/.bench-installed
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

## Redis killed and hung, PostgreSQL restarted, under mixed load.
bench-faults: install services $(BIN)/.bench-installed
	$(BIN)/python -m bench.faults $(BENCH_ARGS)
