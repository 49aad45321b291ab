# Baton's entry points. `make demo` shows Baton working; `make test` runs every test.
# Both install missing Debian packages first (scripts/ensure-deps.sh) and use Swift at /opt/swift
# when it is not already on PATH.

export PATH := $(PATH):/opt/swift/usr/bin
SWIFT ?= swift
BATON := .build/debug/baton

.PHONY: all deps build release test test-asan demo chaos bench bench-serve check-deploy deploy-venv fuzz format lint clean

all: build

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Every test: unit tests and integration tests against throwaway redis-server processes.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## The same suite under AddressSanitizer (its own build folder; slower). Leak detection is off:
## XCTest and Foundation on Linux keep test cases and caches alive at exit, and LeakSanitizer
## reports those; memory errors (use-after-free, overflows, double frees) still fail the run.
test-asan: deps
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --sanitize=address --scratch-path .build-asan

## libFuzzer on the parsers (docs/FUZZING.md): builds BatonFuzz with libFuzzer and AddressSanitizer
## in .build-fuzz, then fuzzes each target for FUZZ_SECONDS (default 60) from its seed corpus in
## Tests/Fuzz/corpus/. Exits non-zero on a crash and says where the crashing input was saved.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) Tests/Fuzz/fuzz.sh

## Baton's main job on an embedded default: a private redis-server, started and stopped for you.
demo: build
	@scripts/demo.sh

## Randomized fault injection against real processes (scripts/chaos.py): CHAOS_SECONDS (default
## 120) of faults, then invariant checks; CHAOS_SEED=N replays a run. Exits non-zero on a failure.
chaos: build
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_SEED=$(CHAOS_SEED) python3 scripts/chaos.py

## Formats every Swift file in place with the toolchain's swift-format (.swift-format: 4 spaces,
## 120 columns).
format:
	$(SWIFT) format -i -r --parallel Sources Tests Package.swift

## Static checks: swift-format's lint (warnings fail), and the module diagram in
## docs/ARCHITECTURE.md against Package.swift.
lint:
	$(SWIFT) format lint --strict -r --parallel Sources Tests Package.swift
	python3 scripts/check-architecture.py

clean:
	rm -rf .build .build-asan .build-fuzz

## Client, lock and token-read latency figures against a private redis-server (release build),
## each as a ratio to a raw socket round trip measured in the same run.
bench: deps
	$(SWIFT) build -c release --product baton
	@scripts/with-private-redis.sh .build/release/baton bench lock
	@scripts/with-private-redis.sh .build/release/baton bench tokens
	@scripts/with-private-redis.sh .build/release/baton bench secrets

## Coordinator scale runs (release build): 2,000 services with 30 s tokens on 3 replicas, then
## 10,000 services with 5-minute tokens on one replica (about 10 minutes in all).
bench-serve: deps
	$(SWIFT) build -c release --product baton
	python3 bench/serve_bench.py --services 2000 --lifetime 30 --replicas 3 --duration 120
	python3 bench/serve_bench.py --services 10000 --lifetime 300 --replicas 1 --duration 420

## Checks of the deployment files: the Dockerfile (hadolint), the Kubernetes manifests
## (kubernetes-validate against their schemas for the oldest supported and the newest Kubernetes, and
## Deploy/check-kubernetes.py for what they must agree on), each compose file (`docker-compose config`,
## which needs the docker-compose package but no Docker engine: Deploy/check-compose.sh, which also
## makes sure each refuses a .env without the encryption key and the Redis password), each example
## Baton configuration and the Kubernetes ConfigMap's (`baton config check` with the variables the
## compose files and the StatefulSet pass; a warning fails it), and the Redis and Sentinel
## configuration files, each loaded by a real redis-server or redis-sentinel (Deploy/check-configs.sh).
## Then the Prometheus example and alert rules (`promtool check config`, `promtool check rules`, and
## the rules' unit tests with `promtool test rules`).
COMPOSE_FILES := docker-compose.yml Deploy/sentinel/docker-compose.yml Deploy/tls/docker-compose.yml
BATON_EXAMPLES := $(wildcard Deploy/*.json.example Deploy/*/*.json.example)
KUBERNETES_MANIFESTS := $(filter-out %/kustomization.yaml,$(wildcard Deploy/kubernetes/*.yaml))
KUBERNETES_OLDEST := 1.31.0
KUBERNETES_CONFIG := .build/check-deploy/kubernetes-baton.json
check-deploy: build deploy-venv
	@$(DEPLOY_VENV)/bin/hadolint Deploy/Dockerfile && echo "Deploy/Dockerfile: hadolint passes"
	@$(DEPLOY_VENV)/bin/kubernetes-validate --strict --quiet -k $(KUBERNETES_OLDEST) $(KUBERNETES_MANIFESTS)
	@$(DEPLOY_VENV)/bin/kubernetes-validate --strict --quiet $(KUBERNETES_MANIFESTS)
	@echo "Deploy/kubernetes: kubernetes-validate --strict passes (Kubernetes $(KUBERNETES_OLDEST) and the newest)"
	@mkdir -p $(dir $(KUBERNETES_CONFIG)) && $(DEPLOY_VENV)/bin/python Deploy/check-kubernetes.py $(KUBERNETES_CONFIG)
	@BATON=$(BATON) Deploy/check-compose.sh $(COMPOSE_FILES)
	@for example in $(BATON_EXAMPLES) $(KUBERNETES_CONFIG); do \
		output=$$(MY_API_CLIENT_SECRET=example BATON_SENTINEL_PASSWORD=example BATON_REDIS_PASSWORD=example \
			BATON_ENCRYPTION_KEYS="$$($(BATON) keygen)" $(BATON) config check $$example 2>&1) \
			|| { echo "$$output" >&2; echo "check-deploy: baton config check $$example failed" >&2; exit 1; }; \
		echo "$$output"; \
		case "$$output" in *warning:*) echo "check-deploy: $$example has a warning" >&2; exit 1;; esac; \
	done
	@BATON=$(BATON) Deploy/check-configs.sh
	cd Deploy/prometheus && promtool check config prometheus.yml && promtool check rules baton-alerts.yml \
		&& promtool test rules baton-alerts.test.yml

## The virtual environment of check-deploy's linters (Deploy/requirements-check.txt, from PyPI). Made
## again only when that file changes; a half-made one (an install that failed) has no stamp and is
## made again from scratch.
DEPLOY_VENV := .venv-deploy
deploy-venv: $(DEPLOY_VENV)/installed.stamp
$(DEPLOY_VENV)/installed.stamp: Deploy/requirements-check.txt | deps
	rm -rf $(DEPLOY_VENV)
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check --require-virtualenv -r Deploy/requirements-check.txt
	touch $@
