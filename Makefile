# Every target creates .venv and installs what it needs when missing, so `make demo` and
# `make test` each work as the first command on a machine with only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint dist clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing claude-compliance-logs and its tool and test dependencies into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[tool,test]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import collector, ccl, httpx, click" || (echo "installation failed" >&2; exit 1)
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) -m ccl.demo

# pytest on every core (up to 4): the tests share no port (servers bind port 0) and no file outside their
# tmp_path but the per-user caches, which are written atomically; loadfile keeps a module's fixtures on one worker.
test: $(STAMP)
	$(PY) -m ccl validate
	$(PY) -m ccl test --coverage > .ccl-test-report.txt || (cat .ccl-test-report.txt; exit 1)
	@grep -E "tests:|have a rule" .ccl-test-report.txt
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile

bench: $(STAMP)
	$(PY) bench/bench_collector.py
	$(PY) bench/bench_normalize.py
	$(PY) bench/bench_detect.py
	$(PY) bench/bench_alerts.py

# The wheel and sdist, and the single-file collector for Vector hosts (python3 3.11+, nothing
# installed), all from what is installed in .venv: nothing is downloaded.
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .
	$(PY) deploy/build_pyz.py --out dist/claude-compliance-collector.pyz

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info .demo out .ccl-test-report.txt
