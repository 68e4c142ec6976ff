# cdc: `make demo` runs the daemon end to end on throwaway components;
# `make test` runs every test against real servers it starts itself.

GO        ?= go
BIN       := bin/cdc
# Private PostgreSQL and MariaDB servers are started from the machine's server
# binaries; `make deps` installs them from Debian's packages where they are missing.
PG_PACKAGE ?= postgresql
MARIADB_PACKAGE ?= mariadb-server
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# promtool checks and unit-tests monitoring/alerts.yaml. It is taken out of
# Debian's prometheus package rather than installing the package, which would
# start a Prometheus server on machines with systemd.
PROMTOOL  := bin/promtool
UNIT_PKGS := $(shell $(GO) list ./... | grep -v /integration)

.PHONY: all build static image deps test test-unit test-integration test-guarded test-postgres-modes chaos demo bench lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/cdc

# A static binary, for the container image: cdc links libpg_query (cdc
# check-migration) through cgo, so the C toolchain links it statically;
# netgo and osusergo keep glibc's resolver and user database out.
static:
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo -ldflags '-s -w -linkmode external -extldflags "-static"' -o $(BIN) ./cmd/cdc

# The container image (Dockerfile), with buildah where there is no Docker engine.
IMAGE ?= cdc:dev
image:
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then docker build -t $(IMAGE) .; \
	else buildah bud --isolation chroot -t $(IMAGE) .; fi

deps:
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "$$PG_BINDIR" ]; then missing="$(PG_PACKAGE)"; fi; \
	if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then missing="$$missing $(MARIADB_PACKAGE)"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing database server binaries (Debian packages:$$missing)"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(MAKE) --no-print-directory $(PROMTOOL)

$(PROMTOOL):
	@echo "extracting promtool from Debian's prometheus package"
	@rm -rf bin/.prometheus-deb && mkdir -p bin/.prometheus-deb
	@cd bin/.prometheus-deb && { apt-get download prometheus >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; } && \
		dpkg-deb -x prometheus_*.deb . && cp usr/bin/promtool ../promtool
	@rm -rf bin/.prometheus-deb

test: deps lint test-unit test-integration test-guarded

test-unit: deps
	PROMTOOL=$(abspath $(PROMTOOL)) $(GO) test -race -count=1 $(UNIT_PKGS)

test-integration: deps
	$(GO) test -count=1 -timeout 40m ./integration/...

# The integration tests that take every path by which memory is given back
# (both sources' snapshots and streams, large and streamed transactions and values, every
# type, exactly-once, a broker outage and restart, dead letters), with a daemon
# built with -tags cdcguard: released memory is made unreadable or poisoned, so
# a use after release fails loudly (see internal/memory/guard.go).
GUARDED_TESTS := SnapshotThenStreamMatchesTheTable|OrderAggregate|StreamedTransactionsPublishWhatWholeOnesDo|PartialRowImagesKeepTopicsEqualToTables|KillNineInsideALargeTransactionResumesInsideIt|UnchangedToastedValueIsCarriedWhole|ExactlyOnceSurvivesKillNine|ParallelSnapshotEqualsTheSerialOne|MySQLXATransactionsAreSentAtTheirCommit|BrokerOutageWhileStreaming|TypesInSnapshotAndStream|RecordLargerThanTheTopicAccepts|SakilaFilmSnapshotsAndStreams|SakilaMySQLFilmSnapshotsAndStreams
test-guarded: deps
	$(GO) test -count=1 -tags cdcguard -run 'Guard' ./internal/memory
	$(GO) test -count=1 -tags cdcguard -timeout 20m -run '$(GUARDED_TESTS)' ./integration/...

# The chaos test alone, for longer (make test runs it for 20 s): kill -9, broker
# and database restarts and broker stalls under a workload, for each source and
# delivery mode, then cdc verify; then for PostgreSQL again, its source in the
# other mode (POSTGRES_OTHER_MODE). CHAOS_DURATION per source and mode.
CHAOS_DURATION ?= 5m
chaos: deps
	CDC_CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -count=1 -timeout 90m -run TestChaos -v ./integration/...
	CDC_CHAOS_DURATION=$(CHAOS_DURATION) CDC_TEST_POSTGRES_OPTIONS="$(POSTGRES_OTHER_MODE)" $(GO) test -count=1 -timeout 90m -run TestChaos -v ./integration/...

# The PostgreSQL integration tests again with the source in the modes make
# test does not use by default: transactions sent whole, values in text
# (make test covers them by tests of their own; this runs every test so).
POSTGRES_OTHER_MODE := streaming: false, binary: false
test-postgres-modes: deps
	CDC_TEST_POSTGRES_OPTIONS="$(POSTGRES_OTHER_MODE)" $(GO) test -count=1 -timeout 40m ./integration/...

demo: deps build
	$(GO) run ./integration/demo -cdc $(BIN) -config config.example.yaml

# Go micro-benchmarks of the hot path, then the end-to-end harness against the
# libraries' floor (BENCH_ROWS rows; BENCH_FLAGS e.g. -source postgres, -repeat 3).
# Both are written, with the date and the machine, to $(BENCH_FIGURES).
BENCH_ROWS ?= 1000000
BENCH_FIGURES ?= docs/performance-figures.md
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem $(UNIT_PKGS) > bin/bench-micro.txt; status=$$?; cat bin/bench-micro.txt; exit $$status
	$(GO) run ./integration/bench -cdc $(BIN) -rows $(BENCH_ROWS) -figures $(BENCH_FIGURES) -micro bin/bench-micro.txt $(BENCH_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
