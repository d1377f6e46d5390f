# audiotok: `make test` and `make demo` each set up what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# command:package pairs; a package is installed when its command is missing.
# espeak-ng speaks the demo corpus; slurm-wlm and munge run the Slurm launcher tests; gcc builds
# the reference ABX package's Cython extension (requirements-reference.txt).
APT_DEPS := espeak-ng:espeak-ng slurmctld:slurm-wlm munged:munge gcc:gcc

.PHONY: venv system-deps test demo lint clean

venv: $(STAMP)

# requirements-reference.txt: upstream packages the test goldens are regenerated from, installed
# without dependencies into $(VENV)/reference, off the venv's path (tests/data/README.md).
$(STAMP): requirements.txt requirements-reference.txt pyproject.toml | system-deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	rm -rf $(VENV)/reference
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --target $(VENV)/reference -r requirements-reference.txt
	# Bytecode for every installed module, so a command starts fast even where PYTHONDONTWRITEBYTECODE is set.
	$(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	touch $@

# Debian packages the tests and the demo use.
system-deps:
	@missing=""; for d in $(APT_DEPS); do command -v $${d%%:*} >/dev/null || missing="$$missing $${d#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "warning: missing$$missing (install it; tests that need it skip)" >&2; fi; \
	fi

# Two pytest processes, a test file each at a time (module fixtures run once), one thread each.
test: venv system-deps
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/python -m pytest -q -n 2 --dist loadfile --durations=25

# ruff with pyproject.toml's rules and line length (160), formatting included; shellcheck on every script.
lint: venv
	$(VENV)/bin/ruff check audiotok tests bench
	$(VENV)/bin/ruff format --check audiotok tests bench
	$(VENV)/bin/shellcheck bin/audiotok .ci/run $$(find recipes -name '*.sh')

# The main job on its embedded default: a small corpus spoken by espeak-ng, end to end.
demo: venv system-deps
	cd recipes/mini && ./run.sh

clean:
	rm -rf $(VENV) recipes/mini/data recipes/mini/exp recipes/mini/dump
