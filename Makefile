# Every target a developer needs; CI runs `make test` exactly as written here.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
# Redocly CLI reports usage to its vendor unless told not to; CI reaches no such host anyway.
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

.PHONY: install run test lint typecheck imports markers pytest services translations fmt docs clean messages \
	lock production bench bench-scale bench-faults bench-profile openapi-lint types types-check \
	typecheck-js

# Exactly the versions in the lock (requirements/build.txt and dev.txt, hashed), then the
# project itself, built by the locked setuptools.
$(BIN)/.installed: pyproject.toml requirements/build.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/build.txt
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed translations node_modules/.installed

## The npm dev tools (OpenAPI linters, openapi-typescript, tsc), again only when the lock changed.
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Re-resolve the lock from pyproject.toml: production, then dev and bench on top of it with the
## same versions of everything they share. Keeps what is locked unless LOCK_ARGS=--upgrade.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --quiet \
	--custom-compile-command "make lock" $(LOCK_ARGS)
lock: $(BIN)/.installed
	$(BIN)/uv pip compile requirements/build.in --universal --generate-hashes --quiet \
		--custom-compile-command "make lock" $(LOCK_ARGS) -o requirements/build.txt
	$(UV_COMPILE) -o requirements/runtime.txt
	$(UV_COMPILE) --extra dev -c requirements/runtime.txt -o requirements/dev.txt
	$(UV_COMPILE) --extra dev --extra bench -c requirements/dev.txt -o requirements/bench.txt

## What production runs, built into PRODUCTION_DIR (see the README's Deploy section).
PRODUCTION_DIR ?= build/production
production:
	bash scripts/build-production.sh $(PRODUCTION_DIR)

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

test: install lint typecheck imports markers openapi-lint types-check typecheck-js pytest

## docs/openapi.json under Spectral's OpenAPI rules and Redocly's recommended ones; a warning fails.
openapi-lint: node_modules/.installed
	npx --no-install spectral lint --fail-severity=warn --quiet docs/openapi.json
	npx --no-install redocly lint --format=stylish docs/openapi.json

## The TypeScript declarations for SPA developers, from docs/openapi.json.
TYPES_COMMAND = npx --no-install openapi-typescript docs/openapi.json --redocly openapi-ts.redocly.yaml
types: node_modules/.installed
	$(TYPES_COMMAND) --output static/types/api.d.ts

## Fails when static/types/api.d.ts is not what docs/openapi.json generates.
types-check: node_modules/.installed
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(TYPES_COMMAND) --output "$$tmp/api.d.ts" >/dev/null && \
		diff -u static/types/api.d.ts "$$tmp/api.d.ts" || \
		{ echo "types-check: static/types/api.d.ts is out of date: run \`make docs\`" >&2; exit 1; }

## The dashboard's JavaScript against the generated types (JSDoc annotations, jsconfig.json).
typecheck-js: node_modules/.installed
	npx --no-install tsc --project jsconfig.json

fmt: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerate files derived from the code: the key reference, the OpenAPI document, its types.
docs: $(BIN)/.installed
	$(BIN)/flask preferences docs
	$(MAKE) --no-print-directory types

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov

## Re-extract translatable strings and merge them into every catalogue.
messages: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l -k lazy_pgettext:1c,2 --no-location --sort-output \
		-o app/translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i app/translations/messages.pot -d app/translations

$(BIN)/.bench-installed: $(BIN)/.installed requirements/bench.txt
	$(BIN)/pip install --quiet --require-hashes -r requirements/bench.txt
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
