# Two entry points: `make demo` (the main job) and `make test` (all tests).
# Both create .venv when needed and install torch (pinned) before the package.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench venv clean serve

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,serve,serve-test,tune,content]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cinerec.demo

# The service on the demo's artifacts (run `make demo` first): REST + web page on :8000.
serve: $(STAMP)
	$(BIN)/cinerec serve demo-out/ncf demo-out/item-knn --pipeline ncf=item-knn:500 --api-key demo-key

test: $(STAMP)
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[test,bench]"
	$(BIN)/python benchmarks/data_load.py
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/stats.py
	$(BIN)/python benchmarks/compression.py

clean:
	rm -rf $(VENV) .pytest_cache
