# The front door: `make demo` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench protos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/adult/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_contract.py

# The Open Inference Protocol's gRPC modules, from the vendored proto (grpcio-tools, dev).
protos: $(STAMP)
	$(BIN)/python -m mooring.serving.grpc.protos.generate src

clean:
	rm -rf $(VENV) .mooring build dist .pytest_cache .mypy_cache .ruff_cache
