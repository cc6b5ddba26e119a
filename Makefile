.PHONY: install test demo bench lint
install:
	scripts/install
test:
	scripts/test
demo:
	scripts/demo
bench: install
	.venv/bin/python benchmarks/bench_definitions.py
lint: install
	.venv/bin/python -m ruff check tengine_min tests benchmarks
