# Stage1 data service: local development. The native stack (no Docker) is managed by local/stack.py.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Every local tool (gateway, migrations, tests) reads the settings the stack writes here.
export STAGE1_ENV_FILE ?= $(CURDIR)/.state/stage1.env

.PHONY: help venv up dev down status logs reset env migrate test test-unit lint openapi web web-deps chromium

help:    ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## create .venv with the project (editable) and its dev tools

up: venv web  ## start Postgres, QuestDB, MinIO and the gateway in the background; return when healthy
	$(PY) local/stack.py up

dev: venv web  ## start the services, then the gateway in the foreground (Ctrl-C stops the gateway)
	$(PY) local/stack.py up --no-gateway
	@$(PY) local/stack.py stop-gateway
	$(VPY) -m stage1_local.gateway

down:    ## stop everything
	$(PY) local/stack.py down

status:  ## one line per service
	$(PY) local/stack.py status

logs:    ## tail the logs (make logs SERVICE=minio for one)
	$(PY) local/stack.py logs $(SERVICE)

reset:   ## down, then wipe .state (data and generated secrets); keeps the install cache
	$(PY) local/stack.py reset

env:     ## print the STAGE1_* settings of the local stack (set -a; eval "$$(make -s env)"; set +a)
	@$(PY) local/stack.py env

migrate: venv  ## apply pending migrations (python -m stage1_local.migrate --help for more)
	$(VPY) -m stage1_local.migrate up

test-unit: venv  ## unit tests only (no services)
	$(VPY) -m pytest tests/unit -q

test: venv web chromium  ## lint, start the stack (gateway on the current code), run all tests against it
	$(VPY) -m ruff check .
	cd $(WEB_UI) && npx vitest run
	$(PY) local/stack.py restart-gateway
	$(VPY) -m pytest -q

openapi: venv web-deps  ## write docs/openapi.json (every function's spec merged) and the web client's types from it
	$(VPY) -m stage1_local.openapi
	cd $(WEB_UI) && npx openapi-typescript ../../../docs/openapi.json -o src/api/schema.d.ts

lint: venv
	$(VPY) -m ruff check .

# --- Seed data (docs/resources.md): two datasets, two runs, two simulations, through the API.
.PHONY: seed

seed: venv  ## load the seed datasets, runs and simulations through the gateway (idempotent; needs `make up`)
	$(VPY) -m stage1_local.seed

# --- The client (docs/client.md): the `stage1` command is .venv/bin/stage1.
.PHONY: demo

demo: venv  ## the end-to-end demo against the running stack (dataset, uploads, run, predictions, simulation)
	$(VPY) -m stage1_local.demo $(ARGS)

# --- AWS deployment (docs/deploy.md). aws-sam-cli lives in its own venv under ~/.cache/stage1; `make test`
# runs the same checks as tests/deploy (sam validate --lint, sam build of every zip function and the layer).
.PHONY: sam-check sam-build package-report layer-lock bench-cold-start sam

sam-check: venv  ## sam validate --lint + sam build (zip functions and layer; image functions need Docker)
	$(VPY) -m stage1_local.sam check

sam-build: venv  ## sam build into .aws-sam/build (where Docker exists, plain `sam build` also builds the image)
	$(VPY) -m stage1_local.sam build

package-report: venv  ## each zip function's unzipped size as Lambda receives it, against the 250 MB limit
	$(VPY) -m stage1_local.package_report --check

layer-lock: venv  ## re-resolve layers/stage1/requirements.txt into requirements.lock (python3.12 manylinux)
	$(VPY) layers/stage1/build_layer.py lock

bench-cold-start: venv  ## cold start of every API function from its Lambda package (median of 7 processes)
	$(VPY) tests/benchmarks/bench_cold_start.py

sam: venv  ## run any sam command from the cached install: make sam ARGS="deploy --guided"
	$(VPY) -m stage1_local.sam run -- $(ARGS)

# --- The web client (docs/web.md): React sources in functions/web/ui, built into functions/web/dist.
WEB_UI := functions/web/ui
WEB_SRC := $(shell find $(WEB_UI)/src $(WEB_UI)/index.html $(WEB_UI)/vite.config.ts $(WEB_UI)/tsconfig.json $(WEB_UI)/scripts -type f 2>/dev/null)

$(WEB_UI)/node_modules/.installed: $(WEB_UI)/package-lock.json
	cd $(WEB_UI) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web-deps: $(WEB_UI)/node_modules/.installed  ## npm ci of the web client (npm's cache in ~/.npm)

functions/web/dist/stage1-manifest.json: $(WEB_UI)/node_modules/.installed $(WEB_SRC)
	cd $(WEB_UI) && npm run -s build

web: functions/web/dist/stage1-manifest.json  ## build the web client when its sources are newer than dist (type check, bundle budget)

chromium:  ## Debian's chromium for the web client's end-to-end tests (installed only when missing)
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
