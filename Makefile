# The two commands: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every dependency (runtime and dev, one venv for both) pinned with the hashes of all its files.
LOCK := requirements.lock
# `make lock` runs pip-tools from a venv of its own, so .venv holds exactly what the lock says.
LOCK_TOOLS := $(VENV)/lock-tools
LOCK_TOOL_PINS := pip==26.3 pip-tools==7.6.2
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --extra=dev --build-deps-for=editable \
	--no-emit-index-url --no-emit-find-links --output-file=$(LOCK) pyproject.toml
# Task workers `make serve` starts beside gunicorn (each sends e-mails from the queue).
TASK_WORKERS ?= 1

# German and French (issue 19): the catalogs are committed, the compiled .mo files are
# not; polib compiles them (no gettext tools needed to run or test).
CATALOGS := $(wildcard locale/*/LC_MESSAGES/*.po twofactor/locale/*/LC_MESSAGES/*.po)
COMPILED := $(CATALOGS:.po=.mo)
# `make messages` (needs gettext's xgettext) re-reads the marked strings into the catalogs.
MAKEMESSAGES = DEBUG=1 $(abspath $(BIN))/python $(abspath manage.py) makemessages \
	--locale de --locale fr --no-obsolete --add-location=file

.PHONY: run test install lint typecheck lock lock-upgrade serve worker screenshots clean messages

# Only what the lock pins, checked against its hashes; then the project itself, without deps.
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip install --quiet --dry-run --no-index --no-build-isolation -e '.[dev]' \
	  || { echo "$(LOCK) does not satisfy pyproject.toml: run make lock" >&2; exit 1; }
	touch $(STAMP)

install: $(STAMP) $(COMPILED)

%.mo: %.po $(STAMP)
	$(BIN)/python -c 'import sys, polib; polib.pofile(sys.argv[1]).save_as_mofile(sys.argv[2])' $< $@

# The project's strings in locale/, the reusable twofactor app's in its own twofactor/locale/.
messages: $(STAMP)
	$(MAKEMESSAGES) --ignore 'twofactor/*' --ignore 'tests/*' --ignore 'benchmarks/*' \
	  --ignore 'staticfiles/*' --ignore 'artifacts/*' --ignore 'docs/*'
	$(MAKEMESSAGES) --domain djangojs --ignore 'twofactor/*' --ignore 'tests/*' \
	  --ignore 'staticfiles/*' --ignore 'artifacts/*' --ignore 'docs/*'
	cd twofactor && $(MAKEMESSAGES) --ignore 'migrations/*'
	cd twofactor && $(MAKEMESSAGES) --domain djangojs

run: $(STAMP) $(COMPILED)
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo "Log in at http://localhost:8000 with one of the demo users above (passkeys need localhost, not 127.0.0.1)."
	@echo "E-mails (reset links, security notices) are printed here by the task worker."
	DEBUG=1 $(BIN)/python manage.py db_worker --no-reload & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:8000

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(COMPILED) lint typecheck
	$(BIN)/python -m pytest

serve: $(STAMP) $(COMPILED)
	@test -n "$$SECRET_KEY" || { echo "make serve: SECRET_KEY is not set. Export a long random value, e.g." \
	  "SECRET_KEY=\$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" >&2; exit 1; }
	$(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/python manage.py migrate --no-input
	@echo "make serve: gunicorn and $(TASK_WORKERS) task worker(s); more on other machines: make worker"
	workers=""; for n in $$(seq $(TASK_WORKERS)); do \
	  $(BIN)/python manage.py db_worker --no-reload & workers="$$workers $$!"; done; \
	  trap 'kill $$workers 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/gunicorn portal.wsgi:application --config portal/gunicorn.conf.py

# One task worker (sends the e-mails), for a machine beside the app servers: same environment.
worker: $(STAMP) $(COMPILED)
	$(BIN)/python manage.py db_worker --no-reload

# The README's tour pictures: saved by the browser journeys, copied under stable names.
TOUR := login-1-password-desktop:01-login enable-1-profile-desktop:02-profile \
	enable-2-password-desktop:03-confirm-password enable-3-qr-desktop:04-enable-dialog \
	enable-3-qr-phone:04-enable-dialog-phone enable-5-activated-desktop:05-activated \
	enable-4-backup-codes-desktop:17-setup-ends-with-codes \
	login-drift-recovered-desktop:18-drift-recovered \
	profile-1-actions-desktop:19-profile-actions profile-4-email-sent-desktop:20-change-email \
	profile-6-delete-desktop:21-delete-account \
	backup-1-codes-desktop:06-backup-codes login-2-code-desktop:07-code-step \
	login-2-code-phone:07-code-step-phone login-drift-desktop:08-clock-drift \
	login-locked-desktop:09-locked activity-desktop:10-activity \
	disable-1-confirm-desktop:11-disable users-2-activated-desktop:12-all-users-activated \
	users-4-reset-desktop:13-reset users-6-user-sees-reset-desktop:14-user-sees-reset \
	enable-3-qr-nojs-desktop:15-enable-without-javascript \
	staff-1-needs-2fa-desktop:16-staff-needs-2fa \
	passkey-add-desktop:22-add-passkey passkey-added-desktop:23-passkey-added \
	passkey-list-desktop:24-passkey-list passkey-code-step-desktop:25-passkey-code-step \
	passkey-sign-in-desktop:26-sign-in-with-passkey \
	policy-1-page-desktop:27-security-policy policy-2-banner-desktop:28-policy-banner \
	policy-3-forced-setup-desktop:29-forced-setup trust-1-code-step-box-desktop:30-trust-this-browser \
	trust-2-list-desktop:31-trusted-browsers sessions-1-list-desktop:32-sessions \
	sessions-2-staff-desktop:33-staff-sessions german-3-activated-desktop:34-german-profile \
	german-5-locked-phone:35-german-lock-phone

screenshots: $(STAMP) $(COMPILED)
	$(BIN)/python -m pytest -q tests/e2e/test_journeys.py tests/e2e/test_edges.py \
	  tests/e2e/test_profile_journeys.py tests/e2e/test_passkeys.py \
	  tests/e2e/test_policy_trust_sessions.py tests/e2e/test_languages.py
	for pair in $(TOUR); do \
	  cp artifacts/screenshots/$${pair%%:*}.png docs/screenshots/tour-$${pair#*:}.png; done

# Re-resolves after a change to pyproject.toml, keeping every pin it can; lock-upgrade takes
# the newest releases pyproject.toml allows.
$(LOCK_TOOLS)/.installed-stamp: Makefile
	test -x $(LOCK_TOOLS)/bin/python || $(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet $(LOCK_TOOL_PINS)
	touch $@

lock: $(LOCK_TOOLS)/.installed-stamp
	$(PIP_COMPILE)

lock-upgrade: $(LOCK_TOOLS)/.installed-stamp
	$(PIP_COMPILE) --upgrade

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 .pytest_cache .mypy_cache .ruff_cache
