#!/usr/bin/env bash
# The whole test suite, tier by tier, with each tier's result and time.
#
#   ./test.sh                  check the prerequisites, then run every tier
#   ./test.sh --install-deps   as root: first install the missing Debian
#                              packages and rustup components (apt-get, rustup)
#
# Run as root: the integration tests really launch jails (as a user they
# print SKIP). A missing prerequisite never fails a test: the tests that need
# it print `SKIP <test>: <reason>`, and the summary at the end lists them.
# Every tier runs even when an earlier one failed; the exit status is 1 when
# any tier failed, 0 otherwise. Used by .ci/run.
set -uo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never
# A failing assertion's message is what a reader needs, not a backtrace.
export RUST_BACKTRACE=0

install=0
for a in "$@"; do
    case $a in
        --install-deps) install=1 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument '$a' (only --install-deps)" >&2; exit 255 ;;
    esac
done

root=0
[ "$(id -u)" = 0 ] && root=1
sudo=""
[ $root = 1 ] || sudo="sudo "

# --- prerequisites ----------------------------------------------------------
# Debian package -> what needs it (kept in step with .ci/run).
declare -A NEEDS=(
    [uidmap]="newuidmap/newgidmap: -U/-G and use_newidmap tests"
    [busybox-static]="nc/ping/netstat in the network tests; the VM tier's static init"
    [iproute2]="ip: the network tests"
    [procps]="ps/pgrep: process observation"
    [python3]="the seed config's interpreter (seed tests, the package check)"
    [file]="the VM tier checks its binaries are static"
    [cpio]="the VM tier's initramfs"
    [qemu-system-x86]="the VM tier (cgroup v2 in a guest)"
    [bubblewrap]="bench/startup.sh (compared with bwrap)"
    [hyperfine]="bench/*.sh timings"
    [passt]="pasta: the user_net PASTA tests and bench/usernet.sh"
    [iperf3]="bench/usernet.sh throughput"
)
PKGS="uidmap busybox-static iproute2 procps python3 file cpio qemu-system-x86 bubblewrap hyperfine passt iperf3"
MUSL=x86_64-unknown-linux-musl

missing_pkgs() {
    local p out=""
    for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || out="$out $p"; done
    echo "${out# }"
}
missing_rust() { # what `rustup` can add
    local out=""
    cargo fmt --version >/dev/null 2>&1 || out="$out rustfmt"
    cargo clippy --version >/dev/null 2>&1 || out="$out clippy"
    if command -v rustup >/dev/null; then
        rustup target list --installed 2>/dev/null | grep -qx "$MUSL" || out="$out $MUSL"
    fi
    echo "${out# }"
}

if ! command -v cargo >/dev/null; then
    echo "test.sh: cargo is not installed: see https://rustup.rs (then re-run ./test.sh)" >&2
    exit 255
fi
pkgs=$(missing_pkgs)
rust=$(missing_rust)
if [ $install = 1 ] && { [ -n "$pkgs" ] || [ -n "$rust" ]; }; then
    if [ $root = 0 ]; then
        echo "test.sh: --install-deps needs root (apt-get install)" >&2
        exit 255
    fi
    if [ -n "$pkgs" ]; then
        echo "== installing:$pkgs"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null \
            || { echo "test.sh: apt-get install failed" >&2; exit 255; }
    fi
    for r in $rust; do
        case $r in
            rustfmt | clippy) rustup component add "$r" ;;
            *) rustup target add "$r" ;;
        esac >/dev/null 2>&1 || echo "test.sh: rustup could not add $r" >&2
    done
    pkgs=$(missing_pkgs)
    rust=$(missing_rust)
fi
if [ -n "$pkgs" ] || [ -n "$rust" ]; then
    echo "== missing prerequisites (the tests that need them will SKIP):"
    for p in $pkgs; do echo "   $p: ${NEEDS[$p]}"; done
    for r in $rust; do echo "   rustup $r"; done
    echo "   install them with:"
    [ -n "$pkgs" ] && echo "     ${sudo}apt-get install -y --no-install-recommends $pkgs"
    for r in $rust; do
        case $r in
            rustfmt | clippy) echo "     rustup component add $r" ;;
            *) echo "     rustup target add $r" ;;
        esac
    done
    [ $root = 1 ] && echo "   or run: ./test.sh --install-deps"
fi
[ $root = 1 ] || echo "== not root: the integration tests that launch jails will SKIP (run as root for all of them)"

# --- tiers ------------------------------------------------------------------
log=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$log" "$scratch"' EXIT
results=()
failed=0

skip_tier() { # name, reason
    echo "== tier $1: SKIP ($2)"
    echo "SKIP tier-$1: $2" >>"$log"
    results+=("$(printf '%-12s %-5s %5s  %s' "$1" SKIP - "$2")")
}

tier() { # name, command...
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    echo "== tier: $name"
    "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    local dt=$(($(date +%s) - t0))
    if [ "$rc" = 0 ]; then
        echo "== tier $name: ok, ${dt}s"
        results+=("$(printf '%-12s %-5s %4ss' "$name" ok "$dt")")
    else
        echo "== tier $name: FAILED (exit $rc), ${dt}s"
        results+=("$(printf '%-12s %-5s %4ss  exit %s' "$name" FAIL "$dt" "$rc")")
        failed=1
    fi
}

if [[ " $rust " == *" rustfmt "* || " $rust " == *" clippy "* ]]; then
    skip_tier lint "rustfmt or clippy missing (rustup component add rustfmt clippy)"
else
    tier lint bash -c 'cargo fmt --all -- --check && cargo clippy --workspace --all-targets -q -- -D warnings'
fi
tier build cargo build --workspace --all-targets -q
tier unit cargo test --workspace --lib --bins -q
tier doc bash -c 'cargo test --workspace --doc -q && RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace -q'
# --nocapture: the tests' SKIP lines (what this host could not test) are shown.
tier integration cargo test --workspace --no-fail-fast --test '*' -q -- --test-threads=2 --nocapture

# Fuzz: each target of crates/*/fuzz for a bounded time with libFuzzer,
# coverage-guided, on the stable toolchain (the flags cargo-fuzz passes,
# without its nightly-only sanitizer), seeded from the test fixtures.
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
fuzz_all() {
    local flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
    flags="$flags -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
    flags="$flags -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
    local host rc=0 dir t bin corpus
    host=$(rustc -vV | sed -n 's/^host: //p')
    for dir in crates/kafel/fuzz crates/config/fuzz; do
        # --target: the flags must not reach build scripts.
        RUSTFLAGS="$flags" cargo build -q --release --manifest-path "$dir/Cargo.toml" \
            --target "$host" --target-dir target/fuzz || return 1
        for t in "$dir"/fuzz_targets/*.rs; do
            t=$(basename "$t" .rs)
            bin=target/fuzz/$host/release/$t
            corpus=$scratch/corpus-$t
            mkdir -p "$corpus" "target/fuzz/artifacts/$t"
            case $t in
                parse) cp crates/kafel/tests/fixtures/*.policy "$corpus/" ;;
                config_file) cp crates/config/tests/fixtures/* examples/*.cfg "$corpus/" ;;
                cmdline)
                    printf -- '-Mo\0--chroot\0/\0--\0/bin/true' >"$corpus/once"
                    printf -- '-Ml\0--port\0009000\0-t\0005\0--rlimit_as\0max\0--\0/bin/cat' >"$corpus/listen"
                    ;;
            esac
            echo "fuzz $t: ${FUZZ_SECONDS}s"
            if ! "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
                -artifact_prefix="target/fuzz/artifacts/$t/" "$corpus" >"$scratch/fuzz-$t.log" 2>&1; then
                echo "FAIL fuzz $t: crashing input in target/fuzz/artifacts/$t/"
                tail -n 40 "$scratch/fuzz-$t.log"
                rc=1
            else
                grep -E '^stat::number_of_executed_units' "$scratch/fuzz-$t.log" | sed "s/^/  $t /"
            fi
        done
    done
    return $rc
}
if command -v g++ >/dev/null; then
    tier fuzz fuzz_all
else
    skip_tier fuzz "g++ missing (libfuzzer-sys builds libFuzzer: apt-get install g++)"
fi

# The Debian package: built with cargo-deb, unpacked into a scratch
# directory, and run from there.
deb_check() {
    local deb root_dir out
    deb=$(cargo deb -p nsjail -o target/debian 2>&1 | tail -n 1) || { echo "$deb"; return 1; }
    [ -f "$deb" ] || { echo "cargo deb printed no package path: $deb"; return 1; }
    echo "package: $deb"
    root_dir=$scratch/deb
    dpkg -x "$deb" "$root_dir" || return 1
    for f in usr/bin/nsjail usr/share/man/man1/nsjail.1.gz usr/share/bash-completion/completions/nsjail \
        usr/share/zsh/vendor-completions/_nsjail usr/share/fish/vendor_completions.d/nsjail.fish \
        usr/share/doc/nsjail/examples/tooljet-python-full.cfg; do
        [ -e "$root_dir/$f" ] || { echo "FAIL package: $f is missing"; dpkg -c "$deb"; return 1; }
    done
    "$root_dir/usr/bin/nsjail" --version || return 1
    if [ $root = 0 ]; then
        echo "SKIP deb-seed-example: needs root (the seed config maps uid 0 to 65534)"
    elif [ ! -x /usr/bin/python3 ]; then
        echo "SKIP deb-seed-example: /usr/bin/python3 is not installed (apt-get install python3)"
    else
        out=$("$root_dir/usr/bin/nsjail" --config "$root_dir/usr/share/doc/nsjail/examples/tooljet-python-full.cfg" \
            -- /usr/bin/python3 -c 'print(1+1)') || { echo "FAIL package: the seed example failed: $out"; return 1; }
        [ "$out" = 2 ] || { echo "FAIL package: the seed example printed '$out', not 2"; return 1; }
        echo "the packaged nsjail ran the seed example: $out"
    fi
}
if cargo deb --version >/dev/null 2>&1; then
    tier deb deb_check
else
    skip_tier deb "cargo-deb is not installed (cargo install cargo-deb --locked)"
fi

vm_missing=""
for p in qemu-system-x86 busybox-static cpio file; do
    [[ " $pkgs " == *" $p "* ]] && vm_missing="$vm_missing $p"
done
if [[ " $rust " == *" $MUSL "* ]]; then
    skip_tier vm-cgroup2 "rustup target $MUSL is missing (rustup target add $MUSL)"
elif [ -n "$vm_missing" ]; then
    skip_tier vm-cgroup2 "needs${vm_missing} (apt-get install${vm_missing})"
else
    tier vm-cgroup2 vmtest/run.sh
fi

# --- summary ----------------------------------------------------------------
echo
echo "== tiers"
printf '   %s\n' "${results[@]}"
if grep -q 'SKIP' "$log"; then
    echo "== skipped on this host (each with its reason):"
    # (libtest's progress dots can land inside a line: drop them there)
    grep -o 'SKIP.*' "$log" | sed -E 's/^(SKIP:? *)\.+/\1/' | sort | uniq -c
fi
if [ $failed = 1 ]; then
    echo "== FAILED: a tier above failed"
    exit 1
fi
echo "== all tiers passed"
