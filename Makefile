# Every target creates .venv from pyproject.toml on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench soak clean tools bench-tools

# Debian tools the tests and benchmarks compare against (installed when missing; root or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define need_debian
	@missing=""; for tool in $(1); do command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool##*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing from Debian"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
endef

tools:
	$(call need_debian,gzip:gzip zstd:zstd sha256sum:coreutils)

bench-tools: tools
	$(call need_debian,pigz:pigz)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m workerbridge demo

test: $(STAMP) tools
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP) bench-tools
	$(BIN)/python -m bench

soak: $(STAMP) tools
	$(BIN)/python -m pytest -q --run-slow -m slow

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
