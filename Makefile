# Two commands do everything on a fresh machine: `make demo` and `make test`. Both write only
# under build/ (git-ignored); `make figures` is the one command that rewrites the tracked figures/.
# Both create .venv when it is missing: the pinned CPU build of PyTorch first (this keeps pip
# from pulling a multi-GB CUDA build), then this package with all its extras, then a Jupyter
# kernel registered inside the venv.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.sphereviz-installed
TORCH    := torch==2.13.0
EXTRAS   := notebooks,export,test

# pytest over PYTEST_WORKERS processes (pytest-xdist; 0: all in one process). The fast tests of a
# module stay on one worker, the slow ones (notebooks, browser, training) are handed out one at a
# time and first, and fixtures that several workers need are built once (tests/conftest.py).
PYTEST_WORKERS ?= 2
PYTEST_XDIST   := -n $(PYTEST_WORKERS) $(if $(filter 0,$(PYTEST_WORKERS)),,--dist loadgroup --no-loadscope-reorder)

# libgomp threads sleep instead of spinning at barriers: much faster on a busy 2-core machine,
# the same on an idle one (benchmarks/README.md). Also set in the Jupyter kernel below.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup system-deps demo test lint format bench figures notebooks notebooks-html rendered clean

setup: $(STAMP)

# pip would byte-compile what it installs on one core: compileall does it on every core, leaves
# out the packages' own test suites (never imported here; 3,400 files), and like pip skips the
# few files that do not compile (torch ships some in newer Python syntax).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile $(TORCH)
	$(PY) -m pip install --quiet --no-compile -e ".[$(EXTRAS)]"
	$(PY) -c 'import compileall as c, re, sysconfig as s; c.compile_dir(s.get_path("purelib"), \
	  rx=re.compile("/tests/"), quiet=2, workers=0)'
	$(PY) -m ipykernel install --sys-prefix --name sphereviz --display-name "Python (sphereviz)" \
	  --env OMP_WAIT_POLICY PASSIVE
	touch $@

# Optional system packages: Chromium (static plot export, the real-browser test) and Debian's
# Fashion-MNIST. Installed when we are root and apt works; tests that need them skip otherwise.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; the tests that need them will skip"; \
	  else echo "note: not root or no apt: skipping$$missing (the tests that need them will skip)"; fi; \
	fi

# The MNIST comparison at one seed with 3-D features (5 runs, a few minutes on 2 cores; runs in
# build/runs, figures in build/demo/); `sphereviz demo --seeds 0 1 2 --dims 3 2` is the full one.
demo: setup system-deps
	$(PY) -m sphereviz demo

# --durations: the 25 longest tests end the report, so a slow suite says where its time went.
test: setup system-deps lint
	$(PY) -m pytest $(PYTEST_XDIST) --durations=25

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup system-deps
	$(PY) benchmarks/run.py

# Execute the six lessons in quick mode in JupyterLab in Chromium (checking the results of the
# notebooks saved from the page, and the widgets), and their six solutions with papermill.
notebooks: setup system-deps
	$(PY) -m pytest $(PYTEST_XDIST) tests/test_notebooks.py tests/test_browser.py

# Static HTML pages of executed notebooks (sphereviz render-notebooks): every widget drawn as a
# picture of where the run left it, plotly figures loading one plotly.min.js beside the pages.
# Each notebook runs in full mode (its own defaults); its executed copy is kept in
# build/executed/ and reused while the notebook is unchanged, and its runs in its output_dir.
# `make rendered`: the six lessons into the tracked notebooks/rendered/ (the preview a lecturer
# reads before running anything; 1-2 hours on a 2-core CPU from nothing, minutes with the runs
# already trained). `make notebooks-html`: lessons and solutions into build/html/; pick
# notebooks with NOTEBOOKS_HTML=....
RENDER := $(PY) -m sphereviz render-notebooks
LESSONS := $(sort $(wildcard notebooks/*.ipynb))
NOTEBOOKS_HTML ?= $(LESSONS) $(sort $(wildcard notebooks/solutions/*.ipynb))

rendered: setup system-deps
	$(RENDER) $(LESSONS) --out notebooks/rendered

notebooks-html: setup
	$(RENDER) $(NOTEBOOKS_HTML) --out build/html

# The tracked figure set: the full comparison (30 MNIST runs, trained into build/runs when
# missing), its figures and captions rewritten in figures/.
figures: setup
	$(PY) -m sphereviz figures --out figures

clean:
	rm -rf build .pytest_cache .ruff_cache
