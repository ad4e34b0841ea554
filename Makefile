# `make demo` and `make test` do all set-up on a fresh machine: a .venv/ in the repo root with the package installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist
# On machines without an NVIDIA GPU, pin the CPU build of torch (a plain `torch` would pull CUDA wheels).
CONSTRAINTS := $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)

.PHONY: setup data demo test lint bench-speed bench-learning bench-learning-quick clean

$(BIN)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e ".[test]"
	touch $@

setup: $(BIN)/.installed

# Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package (real data, offline afterwards).
data:
	@test -d $(FASHION_MNIST) || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; }

demo: setup data
	$(BIN)/hf-learngene demo

test: setup data
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check hf_learngene tests benchmarks examples
	$(BIN)/ruff format --check hf_learngene tests benchmarks examples

bench-speed: setup
	$(BIN)/python benchmarks/speed/bench_speed.py

# The learning benchmark v2 (benchmarks/learning/PROTOCOL.md): ~2 h on 2 CPU cores, resumable; `-quick` < 2 min.
bench-learning: setup data
	$(BIN)/python benchmarks/learning/run.py --plan cpu2h

bench-learning-quick: setup data
	$(BIN)/python benchmarks/learning/run.py --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
