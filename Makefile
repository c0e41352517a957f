# Two commands for a fresh machine:  `make demo`  and  `make test`.
# Both create .venv, install torch's CPU wheel first, then the project with its extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages: espeak-ng makes the test and training speech; sox and ffmpeg are used by
# ../shared/checks/bad_inputs.sh. Installed only when missing and only when running as root.
APT_PACKAGES := espeak-ng sox ffmpeg

.PHONY: install demo test test-fast bench model sample clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt-get install$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else echo "warning: missing Debian packages:$$missing (run as root or install them; speech-generating tests will be skipped)"; fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[compare,dev]"
	@$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

demo: install
	$(BIN)/fdvad vad examples/sample.flac --format json

test: install
	$(BIN)/python -m pytest -n 2 -q

test-fast: install
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

bench: install
	$(BIN)/python bench/vad_speed.py

# Re-make the shipped default model (about 40 minutes on 2 CPU cores).
model: install
	$(BIN)/python recipes/default_model.py --out src/fdvad/weights

# Re-make the bundled sample examples/sample.flac.
sample: install
	$(BIN)/python scripts/make_sample.py examples/sample.flac

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
