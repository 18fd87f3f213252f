# Two entry points: `make study` and `make test`. Both build .venv with plain pip when missing.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
FMNIST  := /usr/share/datasets/fashion-mnist
SPEC    ?= studies/quickstart.yaml

.PHONY: venv study test lint bench clean system-data

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP) system-data

# Debian's dataset-fashion-mnist, only when missing and when we are root; tests skip otherwise.
system-data:
	@if [ ! -d $(FMNIST) ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
	    >/dev/null 2>&1 || echo "note: could not install dataset-fashion-mnist; its tests will skip"; \
	fi

study: venv
	$(VENV)/bin/racecar-study run $(SPEC) --overwrite

test: venv
	$(VPY) -m pytest -q -p no:cacheprovider tests

lint: venv
	$(VENV)/bin/ruff check racecar_study tests benchmarks

bench: venv
	$(VPY) benchmarks/core_overhead.py

clean:
	rm -rf $(VENV) runs .cache
