.PHONY: install test demo bench lint
install:
	scripts/install
test:
	scripts/test
demo:
	scripts/demo
bench: install
	.venv/bin/python benchmarks/bench_definitions.py
# ruff and mypy as scripts/test runs them: both run, and lint fails if either does.
lint: install
	.venv/bin/python -m ruff check; ruff=$$?; .venv/bin/python -m mypy && exit $$ruff
