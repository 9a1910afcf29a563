# The front door: `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format clean bench bench-quick bench-batch browser report-screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install kmeanscli with its test tools

demo: $(STAMP) ## compress the built-in sample photo to 16 colours and print the report
	$(BIN)/kmeanscli compress --sample -k 16 -o china-k16.png --force

bench-batch: $(STAMP) ## batch -j 2 against pngquant on 44 photos (not a test; takes a minute)
	$(BIN)/python benchmarks/batch_bench.py --jobs 2 --files 44

# The report's browser test drives Debian's Chromium; without it that test is skipped (and says so).
browser: ## install Chromium and its WebDriver for the browser test (Debian/Ubuntu, needs root)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium and chromedriver are installed"; \
	else \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y chromium chromium-driver; \
	fi

report-screenshot: $(STAMP) ## docs/report-china.png: the sample's report in headless Chromium
	$(BIN)/python tests/browser.py docs/report-china.png

lint: $(STAMP) ## ruff
	$(BIN)/ruff check kmeanscli tests benchmarks

test: lint ## ruff, then the test suite
	$(BIN)/python -m pytest -q

format: $(STAMP)
	$(BIN)/ruff check --fix kmeanscli tests benchmarks
	$(BIN)/ruff format kmeanscli tests benchmarks

# The benchmark needs pngquant and ImageMagick (apt-get install pngquant imagemagick); a
# missing one is reported and left out. BENCH_ARGS passes more options, e.g. BENCH_ARGS=--no-large
bench: $(STAMP) ## side-by-side benchmark (10-35 min): Markdown on stdout, updates benchmarks/RESULTS.md
	$(BIN)/python benchmarks/bench.py --json benchmarks/out/results.json --update-results $(BENCH_ARGS)

bench-quick: $(STAMP) ## 4 photos and 3 graphics, 1 repeat, no 12 MP image (a few minutes)
	$(BIN)/python benchmarks/bench.py --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info china-k*.png
