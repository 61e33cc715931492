#!/usr/bin/env bash
# The whole test suite, tier by tier, with each tier's time. Run as root
# (integration tests really launch jails). Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never

tier() { # name, command...
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "== tier: $name"
  "$@"
  echo "== tier $name: $(( $(date +%s) - t0 ))s"
}

tier lint     bash -c 'cargo fmt --all -- --check && cargo clippy --workspace --all-targets -q -- -D warnings'
tier build    cargo build --workspace --all-targets -q
tier unit     cargo test --workspace --lib --bins -q
# --nocapture: the tests' SKIP/NOTE lines (what this host could not test) are shown.
skips=$(mktemp)
trap 'rm -f "$skips"' EXIT
tier integration bash -c "set -o pipefail; cargo test --workspace --no-fail-fast --test '*' -q -- --test-threads=2 --nocapture 2>&1 | tee '$skips'"
if grep -q 'SKIP' "$skips"; then
  echo "== skipped on this host (each with its reason):"
  # (libtest's progress dots can land inside a line: drop them there)
  grep -o 'SKIP.*' "$skips" | sed -E 's/^(SKIP:? *)\.+/\1/' | sort | uniq -c
fi
if [ -x vmtest/run.sh ]; then
  tier vm-cgroup2 vmtest/run.sh
fi
