# Two-command quickstart: `make demo` and `make test`. Both bootstrap .venv through the installer.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench clean

install:
	@bash installers/install.sh

demo: install
	@$(VENV)/bin/mfmjt demo

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: install
	@$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: install
	@$(PY) -m engine.benchmark --out docs/PERFORMANCE.json --table docs/PERFORMANCE.md
	@$(PY) -m trainer.benchmark --out docs/PERFORMANCE_TRAINING.json --table docs/PERFORMANCE_TRAINING.md

clean:
	rm -rf $(VENV) .pytest_cache
