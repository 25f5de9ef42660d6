# gridwatch — one entry point for people and CI.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv deps test browser-test browser-timing e2e-test dist-test demo-test notify-test security cluster-test quick lint bench soak demo clean proto

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# the project and its test dependencies, installed again only when pyproject.toml changed (every target depends
# on venv: a pip run each was about 20 s of every CI target)
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# the Sparkplug B schema compiled to the descriptor gridwatch ships (grpcio-tools' protoc, a test dependency);
# tests/test_sparkplug_codec.py fails when the two differ
proto: venv
	$(BIN)/python -m grpc_tools.protoc -Igridwatch/core/sparkplug --descriptor_set_out=gridwatch/core/sparkplug/sparkplug_b.desc \
	  gridwatch/core/sparkplug/sparkplug_b.proto

# Debian services the tests start for real; installed only when missing.
deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v victoria-metrics >/dev/null 2>&1 || missing="$$missing victoria-metrics"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v faketime >/dev/null 2>&1 || missing="$$missing faketime"; \
	command -v nats-server >/dev/null 2>&1 || missing="$$missing nats-server"; \
	command -v patroni >/dev/null 2>&1 || missing="$$missing patroni"; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	[ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	[ -f /usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata ] || missing="$$missing tesseract-ocr-chi-sim"; \
	ls /usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib >/dev/null 2>&1 || missing="$$missing gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi"; \
	ls /usr/lib/*/gstreamer-1.0/libgstvideoparsersbad.so >/dev/null 2>&1 || missing="$$missing gstreamer1.0-plugins-bad"; \
	ls /usr/lib/*/gstreamer-1.0/libgstrtp.so >/dev/null 2>&1 || missing="$$missing gstreamer1.0-plugins-good"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# four workers on the two cores, one test file each at a time (module fixtures stay in one process): most tests
# wait on real processes (brokers, hubs, agents, scripted scenarios), so more workers fill the waits (fresh
# clone: pytest 512 s with three, 729 s with two; 2026-12-07, quiet: 601 s with three, 548 s with four)
test: deps venv lint
	$(BIN)/python -m pytest -q -n 4 --dist loadfile --durations=12 -m "not dist and not demo and not notify and not browser and not e2e and not security and not cluster"

# the in-process tests only (no broker, database server, hub process or browser): a developer's loop, not CI's
quick: deps venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not dist and not demo and not notify and not browser and not e2e and not security and not cluster"

# issue 31: three NATS nodes, a Patroni pair (etcd, two PostgreSQL) and hubs behind HAProxy, killed node by node
# (about 3 minutes; in .ci/run)
cluster-test: deps venv
	rm -f test-output/cluster-figures.txt
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m cluster tests/test_broker_nats.py tests/test_db_failover.py tests/test_cluster_chaos.py
	@echo "figures measured:"; cat test-output/cluster-figures.txt

# a real web vulnerability scanner against a served hub, signed in as an operator: no finding above low; the report
# in test-output/wapiti.json (about 2 minutes: depth 1 from the start pages, and every OpenAPI operation). wapiti
# 3.2.3 is PyPI's newest for Python 3.11 (Debian's 3.0.4 crashes on Python 3.11 once a URL is excluded); it lives
# in its own venv, its pins apart from the project's
security: deps venv
	@[ -x .venv-scan/bin/wapiti ] || { $(PY) -m venv .venv-scan && .venv-scan/bin/pip install -q "wapiti3==3.2.3"; }
	WAPITI=.venv-scan/bin/wapiti $(BIN)/python -m pytest -q -s -m security tests/test_security_scan.py

# make demo itself and the demo scenario verified against the hub, end to end (three runs of about a minute, most
# of it waiting on the scenario's clock): its own target so make test stays under 10 minutes
demo-test: deps venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m demo tests/test_demo.py tests/test_scenario_e2e.py

# notices through real processes: hubs under faketime (libfaketime), the channel emulators, kills, replicas
notify-test: deps venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m notify tests/test_notify.py tests/test_notify_e2e.py

# the pages in Chromium: board, wall, phone, fleet, 2,000 open cases (about 140 s with three workers; make test was
# 605 s on a loaded CI run with them inside). Two workers: beside the other CI lane, a third browser and its hub
# pushed the 2,000-case board's action -> row time past its 2 s (2.4-3.3 s in three runs of 2026-12-07)
browser-test: deps venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=5 -m "browser and not alone" tests/test_board_browser.py tests/test_board_views.py tests/test_fleet_browser.py tests/test_board_security.py

# the browser test that measures the board's latency with 2,000 open cases, on its own: .ci/run runs it before
# its two lanes start (beside them, action -> row took 2.2 s once against its 2 s; 0.1-0.8 s alone)
browser-timing: deps venv
	$(BIN)/python -m pytest -q -s -m "browser and alone" tests/test_board_browser.py

# the cluster and the fleet end to end: two hub replicas on one PostgreSQL, agents deployed, killed and restarted;
# the heaviest of the rest (the API fuzz on both databases, 138 s; GB/T 28181 with real footage and 2,000
# channels): make test was 625 s of pytest on a quiet fresh clone with them (2026-12-07)
e2e-test: deps venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=5 -m e2e tests/test_hub_replicas.py tests/test_fleet_e2e.py \
	  tests/test_audit_syslog.py tests/test_gb28181.py tests/test_gb28181_guard.py tests/test_gb28181_look.py \
	  tests/test_gb28181_clip.py tests/test_camera_look.py tests/test_api_fuzz.py

# installing and upgrading: the wheel built, installed into a clean venv outside the checkout, every command
# group run from there; and a filled database from every earlier schema revision migrated to head (SQLite and
# PostgreSQL). Two workers sharing the 40 upgrades test by test (one file each left one worker with all of them:
# 230 s quiet, beside the wheel's 95 s)
dist-test: deps venv
	$(BIN)/python -m pytest -q -n 2 --dist load -m dist tests/dist

# ruff, mypy (pydantic plugin; --strict on the shared core), the import contracts of pyproject.toml (the hub's
# floors among them) and no module over 450 lines outside tests and migrations
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy --strict -p gridwatch.core
	$(BIN)/lint-imports
	$(BIN)/python scripts/module_sizes.py

# every benchmark runs, even after one misses its target; a table of figures, ratios and met / not met ends it
bench: deps venv
	$(BIN)/python bench/all.py

# 30 minutes at 2,000 readings/s on PostgreSQL (SOAK_ARGS="--minutes 3" for a short one)
soak: deps venv
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

demo: deps venv
	$(BIN)/python -m gridwatch.demo

clean:
	rm -rf $(VENV) var test-output .pytest_cache
