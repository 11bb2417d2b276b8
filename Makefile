# The front door: `make demo` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Python keeps the bytecode it compiles, and pytest its rewritten test modules, even on a
# machine whose environment says not to (PYTHONDONTWRITEBYTECODE=1, common in images):
# otherwise every process the suite starts compiles src/ and tests/ again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test static lint typecheck unit coverage slowed decisions docs wheel matrix screenshots bench bench-guard protos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# mooring demo, as a pip user runs it, into build/demo (started again on each make demo).
demo: $(STAMP)
	$(BIN)/mooring demo build/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# Every test's phases and fixture set-ups go to build/test-durations.json; the sums per
# file and per fixture: python -m tests._support.durations. Three workers on two cores: the
# tests wait on servers and processes they start for about a sixth of the time, and a
# third worker fills it (2 workers: 1,190 s wall; 3: 1,069 s).
UNIT := -n 3 --dist loadgroup -p tests._support.durations
# `make test` leaves the decision tests to its second stage (UNIT_MARKS="not decisions").
UNIT_MARKS ?=
unit: $(STAMP)
	$(BIN)/python -m pytest $(UNIT) $(if $(UNIT_MARKS),-m "$(UNIT_MARKS)")
	$(BIN)/python -m tests._support.durations --top 15

# Line coverage of src/ over the unit tests, subprocesses and forked workers included.
coverage: $(STAMP)
	rm -rf build/coverage
	-MOORING_TEST_DURATIONS=build/coverage/test-durations.json $(BIN)/coverage run -m pytest $(UNIT)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report --skip-covered --sort=cover | tail -n 40

# The files that hold decision tests (marked with pytest.mark.decisions): the two runs
# below collect only these, not the whole suite (the slowed stage: 193 s to 171 s).
DECISION_FILES = $(shell grep -rl --include='test_*.py' 'pytest.mark.decisions' tests | sort)

# The tests that judge decisions over time, again on one core shared with a busy neighbour:
# their verdicts must not depend on the machine's speed. SLOWED=--shared: the neighbour is
# the work make runs beside it (make test: the unit tests), not a busy loop.
SLOWED ?=
slowed: $(STAMP)
	MOORING_TEST_DURATIONS=build/test-durations-slowed.json \
		$(BIN)/python -m tests._support.slowed $(SLOWED) \
		-- $(BIN)/python -m pytest -m decisions -p tests._support.durations $(DECISION_FILES)
	$(BIN)/python -m tests._support.durations build/test-durations-slowed.json --top 10

# The same decision tests at full speed, alone on the machine, two at a time.
decisions: $(STAMP)
	MOORING_TEST_DURATIONS=build/test-durations-decisions.json $(BIN)/python -m pytest -n 2 \
		--dist loadgroup -m decisions -p tests._support.durations $(DECISION_FILES)
	$(BIN)/python -m tests._support.durations build/test-durations-decisions.json --top 5

# The documentation site, strict: a broken link, a stale config note or a missing page fails.
# Without --quiet: under it MkDocs 1.6 drops the warnings before strict mode counts them
# (tests/test_docs_gate.py runs this recipe on a page with a broken link).
# The CLI, mooring.toml and metrics references are generated from the code (docs/gen).
# Built into the package (src/mooring/_site), which `mooring docs` serves and a wheel
# built after it carries.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir src/mooring/_site

# The wheel and the sdist in dist/, with the documentation site inside the package (make
# docs), built from a copy of the sources (tests/_support/wheel.py; the tests build theirs
# the same way).
wheel: docs
	$(BIN)/python -m tests._support.wheel dist

# The Pythons mooring claims: pyproject.toml's classifiers equal this list and the Install
# page says it (tests/test_wheel.py). For each, a fresh venv, pip install of the wheel
# against the configured index, then mooring --version, mooring docs and mooring demo from
# an empty folder; build/matrix.json records the install and demo seconds and the versions.
# A Python not found is skipped, and a failure with MOORING_REQUIRE_PYTHONS=1 (CI).
MATRIX_PYTHONS := 3.11 3.12 3.13
MATRIX_NICE ?=
matrix: wheel
	$(MATRIX_NICE) $(BIN)/python -m tests._support.matrix dist/mooring_ml-*.whl $(MATRIX_PYTHONS)

# The dashboard's pictures in docs/: what `mooring demo` leaves, served, sent traffic and
# checked for drift, photographed in Debian's Chromium (docs/gen/screenshots.py).
screenshots: $(STAMP)
	$(BIN)/python docs/gen/screenshots.py --work build/screenshots

# The static checks (one process each) and the slowed decision tests run while the unit
# tests run, which keep both cores busy and are the slowed stage's neighbour; the decision
# tests then run again alone, at full speed. Each job's output is printed when it ends.
# The third job slot runs the static checks, then the wheel and make matrix, one after the
# other; the matrix at a lower priority (MATRIX_NICE), so its installs and demos take the
# time the unit tests leave idle rather than slowing them.
static: lint typecheck docs

test: $(STAMP)
	$(MAKE) -j 3 --output-sync=target unit slowed static matrix UNIT_MARKS="not decisions" \
		SLOWED=--shared MATRIX_NICE="nice -n 10"
	$(MAKE) decisions

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_contract.py

# No creeping losses: the working tree served beside the reference commit recorded in
# benchmarks/reference.toml (a detached worktree in the temporary folder, made once and
# reused), each cell's now ÷ reference printed; a run of 3 rounds or more is appended to
# benchmarks/guard-history.md. A benchmark, not a test: nothing is asserted. Every change
# to the request path quotes it. BENCH_GUARD_ARGS: bench_trees.py's options, e.g.
# "--rounds 3 --duration 8", or "--rounds 1 --duration 2" for a smoke run.
BENCH_GUARD_ARGS ?=
bench-guard: $(STAMP)
	$(BIN)/python benchmarks/bench_trees.py --guard $(BENCH_GUARD_ARGS)

# The Open Inference Protocol's gRPC modules, from the vendored proto (grpcio-tools, dev).
protos: $(STAMP)
	$(BIN)/python -m mooring.serving._grpc.protos.generate src

clean:
	rm -rf $(VENV) .mooring build dist src/mooring/_site .pytest_cache .mypy_cache .ruff_cache
