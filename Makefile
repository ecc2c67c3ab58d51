# jobfs: `make run` mounts ./mnt, `make test` runs every test.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN     := bin/jobfs
MOUNT   ?= mnt
# make install: PREFIX and DESTDIR as usual; each folder can be set alone.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

.PHONY: help deps build run test unit integration bench soak vet clean install uninstall

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

deps: ## install what is missing (fuse3 for fusermount3), as root through apt
	@command -v fusermount3 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null; \
	  else echo "jobfs needs fusermount3: sudo apt-get install fuse3" >&2; exit 1; fi; }
	@test -e /dev/fuse || { echo "jobfs needs /dev/fuse (modprobe fuse)" >&2; exit 1; }

build: ## build bin/jobfs, bin/jobfs-init and bin/jobfs-shim (the small programs each step starts from)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/jobfs
	CGO_ENABLED=0 $(GO) build -o $(BIN)-init ./cmd/jobfs-init
	CGO_ENABLED=0 $(GO) build -o $(BIN)-shim ./cmd/jobfs-shim

run: deps build ## mount the job tree at ./mnt in the foreground (Ctrl-C unmounts)
	./$(BIN) mount $(MOUNT)

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRCHECK    ?= github.com/kisielk/errcheck@v1.10.0

vet: ## gofmt, go vet, staticcheck, errcheck, go mod tidy -diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(ERRCHECK) -ignoretests ./...
	$(GO) mod tidy -diff

test: deps vet ## every test: unit tests with -race, then integration tests on a real mount
	$(GO) test -race -count=1 -timeout 40m ./...

bench: deps build ## benchmarks, as ratios against baselines measured in the same run: one table (raw: bin/bench.out)
	@command -v tsp >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { echo "bench: installing task-spooler (tsp), a baseline"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq task-spooler >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq task-spooler >/dev/null; }; } || true
	@command -v tsp >/dev/null 2>&1 || echo "bench: no task-spooler (apt-get install task-spooler): its baselines are left out" >&2
	@# The mount's comparisons first, on a quiet disk: the package benchmarks make and delete
	@# tens of thousands of files, which slow the next minutes' file creation on some disks.
	@{ JOBFS_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./integration || echo FAIL; \
	  $(GO) test -run '^$$' -bench . -benchtime 2s $$($(GO) list ./... | grep -v /integration) || echo FAIL; \
	} 2>&1 | tee bin/bench.out
	@awk 'function f(v) { if (v == "") return "-"; v += 0; if (v >= 1000) return sprintf("%.0f", v); \
	  if (v >= 10) return sprintf("%.1f", v); return sprintf("%.3g", v) }; \
	function row(b, m, j, w, v, r) { printf "%-24s %-14s %10s  %-8s %10s  %10s\n", b, m, j, w, v, r }; \
	BEGIN { print ""; print "jobfs benchmarks (bin/bench.out): baselines measured in the same run; ratio = jobfs / baseline"; \
	  row("benchmark", "measure", "jobfs", "baseline", "value", "ratio") }; \
	/^Benchmark/ && NF >= 4 { name = $$1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$$/, "", name); \
	  split("", jf); split("", bv); split("", bw); split("", nbw); split("", rat); split("", mlist); split("", seen); \
	  nm = 0; nx = 0; other = ""; hasat = ($$0 ~ /@/); \
	  for (i = 3; i < NF; i += 2) { v = $$i; u = $$(i + 1); at = index(u, "@"); \
	    if (at == 0) { if (!hasat) other = other f(v) " " u "  "; else if (u != "ns/op") extra[++nx] = u SUBSEP v; continue } \
	    m = substr(u, 1, at - 1); w = substr(u, at + 1); \
	    if (m ~ /^ratio-/) { rat[substr(m, 7), w] = v; continue } \
	    if (!(m in seen)) { seen[m] = 1; mlist[++nm] = m } \
	    if (w == "jobfs") { jf[m] = v; continue } \
	    bw[m, ++nbw[m]] = w; bv[m, w] = v } \
	  if (!hasat) { printf "%-24s %s\n", name, other; next } \
	  for (k = 1; k <= nm; k++) { m = mlist[k]; \
	    if (nbw[m] == 0) { row(name, m, f(jf[m]), "-", "-", "-"); name = ""; continue } \
	    for (j = 1; j <= nbw[m]; j++) { w = bw[m, j]; \
	      row(name, m, f(jf[m]), w, f(bv[m, w]), ((m, w) in rat) ? f(rat[m, w]) : "-"); name = "" } } \
	  for (k = 1; k <= nx; k++) { split(extra[k], e, SUBSEP); r = (e[1] ~ /\//); \
	    row(name, e[1], "-", "-", r ? "-" : f(e[2]), r ? f(e[2]) : "-"); name = "" } }' bin/bench.out
	@! grep -q '^FAIL' bin/bench.out

soak: deps ## long crash, leak and fuzz runs (not part of make test): JOBFS_SOAK=1, then 60 s of every fuzz target
	JOBFS_SOAK=1 $(GO) test -count=1 -timeout 60m ./integration/...
	@grep -rlE '^func Fuzz' --include='*_test.go' . | sort | { rc=0; while read -r f; do \
	  for fn in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$$f"); do \
	    echo "$(GO) test -run '^$$' -fuzz '^$$fn$$' -fuzztime 60s ./$$(dirname "$${f#./}")"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime 60s "./$$(dirname "$${f#./}")" || rc=1; \
	  done; \
	done; exit $$rc; }

install: build ## install jobfs, jobfs-init and jobfs-shim, the system and user units, man page, bash completion (PREFIX, DESTDIR)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/jobfs
	install -m 0755 $(BIN)-init $(DESTDIR)$(BINDIR)/jobfs-init
	install -m 0755 $(BIN)-shim $(DESTDIR)$(BINDIR)/jobfs-shim
	sed 's|/usr/local/bin/jobfs|$(BINDIR)/jobfs|' cmd/jobfs/jobfs.service > $(DESTDIR)$(UNITDIR)/jobfs.service
	sed 's|/usr/local/bin/jobfs|$(BINDIR)/jobfs|' cmd/jobfs/jobfs-user.service > $(DESTDIR)$(USERUNITDIR)/jobfs.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/jobfs.service $(DESTDIR)$(USERUNITDIR)/jobfs.service
	install -m 0644 cmd/jobfs/jobfs.8 $(DESTDIR)$(MANDIR)/man8/jobfs.8
	install -m 0644 cmd/jobfs/jobfs.bash $(DESTDIR)$(BASHCOMPDIR)/jobfs
	@case "$(BINDIR)" in /usr/local/sbin|/usr/local/bin|/usr/sbin|/usr/bin|/sbin|/bin) ;; \
	  *) echo "note: mount -t fuse.jobfs and fstab find jobfs only in /usr/local/bin, /usr/bin and the like (mount.fuse3 runs it without PATH): ln -s $(BINDIR)/jobfs /usr/local/bin/jobfs" >&2 ;; esac

uninstall: ## remove what make install installed (same PREFIX, DESTDIR)
	rm -f $(DESTDIR)$(BINDIR)/jobfs $(DESTDIR)$(BINDIR)/jobfs-init $(DESTDIR)$(BINDIR)/jobfs-shim $(DESTDIR)$(UNITDIR)/jobfs.service \
	  $(DESTDIR)$(USERUNITDIR)/jobfs.service $(DESTDIR)$(MANDIR)/man8/jobfs.8 $(DESTDIR)$(BASHCOMPDIR)/jobfs

clean: ## remove build output
	rm -rf bin
