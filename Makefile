# Two-command quickstart: `make demo` and `make test`. Both bootstrap .venv through the installer.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install install-user uninstall-user lock demo test bench clean

install:
	@bash installers/install.sh

# For a user outside this checkout: an environment in the user data directory and `mfmjt` in
# ~/.local/bin; uninstall-user removes exactly what install-user added.
install-user:
	@bash installers/install.sh --user

uninstall-user:
	@bash installers/uninstall.sh

# Re-resolve installers/requirements.lock after changing dependencies in pyproject.toml or
# installers/tools.in; commit the lock with the change (`make test` checks that they agree).
lock: install
	@bash installers/lock.sh
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
