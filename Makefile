# jobfs: `make run` mounts ./mnt, `make test` runs every test.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN     := bin/jobfs
MOUNT   ?= mnt

.PHONY: help deps build run test unit integration bench soak vet clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

deps: ## install what is missing (fuse3 for fusermount3), as root through apt
	@command -v fusermount3 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null; \
	  else echo "jobfs needs fusermount3: sudo apt-get install fuse3" >&2; exit 1; fi; }
	@test -e /dev/fuse || { echo "jobfs needs /dev/fuse (modprobe fuse)" >&2; exit 1; }

build: ## build bin/jobfs
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/jobfs

run: deps build ## mount the job tree at ./mnt in the foreground (Ctrl-C unmounts)
	./$(BIN) mount $(MOUNT)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...

test: deps vet ## every test: unit tests with -race, then integration tests on a real mount
	$(GO) test -race -count=1 ./...

bench: deps ## benchmarks, as ratios against baselines measured in the same run
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

soak: deps ## long crash and fuzz runs (not part of make test)
	JOBFS_SOAK=1 $(GO) test -count=1 -timeout 60m ./integration/...

clean: ## remove build output
	rm -rf bin
