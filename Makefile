PY ?= .venv/bin/python

.PHONY: setup test lint bench
setup:
	python3.11 -m venv .venv && .venv/bin/pip install -c constraints-cpu.txt -e ".[dev,ray]"
test:
	$(PY) -m pytest
lint:
	$(PY) -m ruff check metarobot envs policies tests bench cli.py
	$(PY) -m mypy
bench:
	$(PY) bench/throughput.py
