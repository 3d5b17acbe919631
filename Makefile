# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: install run test test-sqlite test-postgres lint format bench worker demo clean screenshots

install: $(VENV)/.installed $(VENV)/.native node_modules/.installed
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0

$(VENV)/.installed: requirements-torch.txt requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build, or a dependency would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet -r requirements-torch.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The import's hot loops in C (native/), built with the machine's compiler; without
# them the import falls back to the same work in Python, two to three times slower.
# Tail keys need xxhash.h (Debian's libxxhash-dev), installed here when root may.
$(VENV)/.native: $(VENV)/.installed native/skd_native.c native/setup.py native/pyproject.toml
	@test -f /usr/include/xxhash.h || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxxhash-dev >/dev/null) ; } \
		|| echo "NOTE: xxhash.h is missing; tail keys will be hashed in Python."
	$(BIN)/pip install --quiet --no-build-isolation --force-reinstall --no-deps ./native
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/python manage.py load_demo
	bash scripts/run.sh

test: $(VENV)/.installed $(VENV)/.native node_modules/.installed
	bash scripts/test.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/corpus_io.py

# The pictures in docs/, from the demo on a throwaway database (Chromium at /usr/bin/chromium).
screenshots: $(VENV)/.installed $(VENV)/.native node_modules/.installed
	$(BIN)/python scripts/screenshots.py

worker:
	$(BIN)/celery -A config worker -B -l info --concurrency 1 -Q default,gpu

clean:
	rm -rf $(VENV) node_modules var
