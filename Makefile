# agentfactory: `make demo` runs the lab rollout, `make test` the whole suite, both from nothing
# on a Debian 12 machine as root (they install what they need first).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Debian packages the controller needs: the Docker engine for the lab, debootstrap to build the
# host image, ssh for Ansible, busybox-static for a tiny test image.
APT_PACKAGES := docker.io debootstrap openssh-client busybox-static ca-certificates
SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
DEMO_HOSTS ?= 3
# Scenarios run side by side: most of their time is spent waiting on package downloads.
MOLECULE_JOBS ?= 2
# Beside the end-to-end tests (the longer stage) molecule's Ansible takes the CPU those leave
# idle: on 2 cores the two stages otherwise slow each other down alike.
MOLECULE_NICE ?= 10

export PATH := $(abspath $(BIN)):$(PATH)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

.PHONY: help deps apt-deps venv engine image demo test lint unit molecule e2e clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: apt-deps venv  ## install every apt and Python dependency (idempotent)

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

engine image: deps  ## start dockerd if needed and build the test-host image
	$(BIN)/agentfactory lab image

demo: deps  ## the whole story on the local lab, ending with the fleet status
	$(BIN)/agentfactory lab up --hosts $(DEMO_HOSTS)
	$(BIN)/agentfactory bootstrap
	$(BIN)/agentfactory monitoring
	$(BIN)/agentfactory registry
	$(BIN)/agentfactory image push
	$(BIN)/agentfactory deploy
	$(BIN)/agentfactory lab status
	$(BIN)/agentfactory status
	@# The gateway speaks TLS (the lab CA) and admits clients by API key; the key stays in a
	@# shell variable, read from `lab credentials` (the lab's vault), never printed.
	@url="$$($(BIN)/agentfactory lab url gateway)/v1/task"; \
	creds="$$($(BIN)/agentfactory lab credentials --json)"; \
	ca="$$(echo "$$creds" | $(PY) -c 'import json, sys; print(json.load(sys.stdin)["ca"])')"; \
	key() { echo "$$creds" | $(PY) -c 'import json, sys; \
	  print(next(a["secret"] for a in json.load(sys.stdin)["accounts"] if a["service"] == "gateway" and a["user"] == sys.argv[1]))' "$$1"; }; \
	code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$$ca" "$$@" \
	  -H 'Content-Type: application/json' -d '{}' "$$url"; }; \
	echo "A request through the gateway with the demo API key: POST $$url"; \
	curl -sS --fail-with-body --max-time 10 --cacert "$$ca" -H "Authorization: Bearer $$(key demo)" \
	  -H 'Content-Type: application/json' -d '{"input": "hello agent factory"}' "$$url"; echo; \
	none="$$(code)"; limited="$$(code -H "Authorization: Bearer $$(key limited)")"; \
	echo "The same request without a key: HTTP $$none (401 expected)"; \
	echo "With the key of 'limited', a client allowed no agent: HTTP $$limited (403 expected)"; \
	echo "URLs and accounts of the lab: .venv/bin/agentfactory lab credentials"; \
	test "$$none" = 401 && test "$$limited" = 403

# Molecule and the end-to-end lab run side by side: both spend most of their time waiting on
# package downloads and health gates, and neither shares hosts or names with the other.
test: deps lint unit image  ## the whole suite: lint, unit, then molecule and end to end side by side
	@start=$$(date +%s); $(MAKE) --no-print-directory -j2 molecule e2e && \
	  echo "make test: all stages passed (molecule and e2e in $$(( $$(date +%s) - start ))s)"

lint: deps  ## ansible-lint (production profile) and ruff
	$(BIN)/ruff check .
	$(BIN)/ansible-lint

unit: deps  ## fast tests: no hosts, no Docker
	$(BIN)/pytest tests/unit -q

# Each scenario's test sequence through molecule/_shared/run.py: its Ansible steps on Mitogen
# (MOLECULE_MITOGEN=0: Ansible's own strategy, as `molecule test`).
molecule: image  ## every molecule scenario, MOLECULE_JOBS at a time (SCENARIOS="a b" for some)
	@$(PY) -m agentfactory_cli.lab.agentimage >/dev/null
	@mkdir -p .agentfactory/logs
	@printf '%s\n' $(SCENARIOS) | nice -n $(MOLECULE_NICE) xargs -P $(MOLECULE_JOBS) -I{} sh -c '\
	  $(PY) -m agentfactory_cli.lab.aptcache molecule/{}/molecule.yml; start=$$(date +%s); \
	  if $(PY) molecule/_shared/run.py {} > .agentfactory/logs/molecule-{}.log 2>&1; then \
	    echo "=== molecule {}: passed in $$(( $$(date +%s) - start ))s"; \
	  else \
	    echo "=== molecule {}: FAILED after $$(( $$(date +%s) - start ))s; its log:"; \
	    tail -n 150 .agentfactory/logs/molecule-{}.log; exit 255; \
	  fi'

e2e: image  ## the CLI against a real lab (creates and removes its own hosts)
	$(BIN)/pytest tests/e2e -q --durations=15

clean:  ## remove the demo lab and runtime state (keeps the host image)
	-$(BIN)/agentfactory lab down
	rm -rf .agentfactory/runs .agentfactory/runner .agentfactory/build
