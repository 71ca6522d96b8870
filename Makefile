# lgwan-chat: the two commands of README, and the rest.
#   make demo   start the whole suite (Synapse + modules + bots) on SQLite
#   make test   run every test (SQLite, and PostgreSQL when reachable), after `make lint`
#   make lint   ruff (lint rules + import order) and mypy, configured in pyproject.toml
#   make bench  benchmarks (see docs/benchmarks.md)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LINT_STAMP := $(VENV)/.lint-installed-stamp

.PHONY: demo production test lint screenshots bench bench-read-status bench-sanitize bench-polls bench-media-gate bench-deploy bench-backup bench-stamps system-deps venv clean-demo

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# The checkers at the versions pinned in setup.cfg's `lint` extra (mypy also needs the suite's
# own dependencies, hence the full install first).
$(LINT_STAMP): $(STAMP) setup.cfg
	$(PY) -m pip install --quiet -e '.[lint]'
	@touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# A production host (admin guide §2.2), as root: the Debian packages (the suite's, PostgreSQL, Redis,
# what pip needs to build psycopg2), then .venv with the suite and Synapse's PostgreSQL and Redis
# support, without the test tools. Again after each update of the checkout.
production:
	@bash scripts/install-system-deps.sh production
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,postgres]'

# System packages the suite needs (only when run as root; otherwise it says what is missing).
system-deps:
	@bash scripts/install-system-deps.sh

demo: system-deps $(STAMP)
	$(VENV)/bin/lgwan-chat demo

# Test modules run in parallel on PYTEST_WORKERS pytest-xdist workers, one whole module per worker
# at a time (its homeservers are module-scoped), longest first (tests/support/scheduling.py). The tests
# mostly wait on Synapse and bots: 3 workers fit 2 cores. One file, serially, with live output:
#   make test PYTEST_ARGS="-n0 tests/test_x.py"
PYTEST_WORKERS  ?= 3
PYTEST_PARALLEL ?= -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: $(STAMP) lint
	@bash scripts/install-system-deps.sh test
	@# Element's libraries for the interop tests, exactly as locked (again only when the lockfile changed)
	cd tests/interop && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --prefer-offline; }
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# Pictures for the user guide: the demo as Nheko shows it, under Xvfb (docs/images/nheko-*.png, ~3 minutes).
screenshots: system-deps $(STAMP)
	@bash scripts/install-system-deps.sh screenshots
	$(PY) scripts/screenshots.py

bench: system-deps $(STAMP)
	$(PY) bench/send_throughput.py $(BENCH_ARGS)

# Read status latency in a room of 5,000 members and 10,000 events (about 15 minutes a backend).
bench-read-status: system-deps $(STAMP)
	$(PY) bench/read_status.py $(BENCH_ARGS)

# File sanitization: seconds per file and page, memory, LibreOffice cold and warm (about a minute).
bench-sanitize: system-deps $(STAMP)
	$(PY) bench/sanitize.py $(BENCH_ARGS)

# Polls bot: a survey answered by 2,000 members; the summary's delay after the last vote (~10 minutes).
bench-polls: system-deps $(STAMP)
	$(PY) bench/polls.py $(BENCH_ARGS)

# LGWAN downloads through the nginx media gate vs without it, 32 KB and 1 MB files (a few minutes).
bench-media-gate: system-deps $(STAMP)
	$(PY) bench/media_gate.py $(BENCH_ARGS)

# Monolith vs workers, as `lgwan-chat deploy init` writes them, on PostgreSQL: sends into a room of
# 500/1000/2000 members, and 500 clients holding /sync while 20 send (about 40 minutes; BENCH_ARGS scale it down).
bench-deploy: system-deps $(STAMP)
	$(PY) bench/deploy.py $(BENCH_ARGS)

# lgwan-chat backup / restore: time and size for N users and M messages (default 200 x 5,000, every 50th a file;
# SQLite). Issue #18's size: BENCH_ARGS="--users 2000 --messages 100000 --backend postgres".
bench-backup: system-deps $(STAMP)
	$(PY) bench/backup.py $(BENCH_ARGS)

# The stamp pack under a registration storm: 2,000 accounts at once, pack on vs off (SQLite; a few minutes).
bench-stamps: system-deps $(STAMP)
	$(PY) bench/stamp_pack.py $(BENCH_ARGS)

# Forget the demo deployment (accounts, rooms, messages) to start from scratch.
clean-demo:
	rm -rf var/demo
