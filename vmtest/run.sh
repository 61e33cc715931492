#!/usr/bin/env bash
# Boots a QEMU TCG guest with a real cgroup v2 hierarchy (all controllers,
# cgroup_no_v1=all) and runs the cgroup test binaries there, one boot for all.
#
# Needs (installs NOTHING itself; missing pieces are reported and exit 2):
#   apt packages:  qemu-system-x86 busybox-static cpio   (plus apt-get, dpkg-deb, gzip)
#   rustup target: x86_64-unknown-linux-musl             (static test binaries)
#   network access to the Debian archive for `apt-get download` of the kernel
#     (cached in vmtest/.cache afterwards)
#
# Usage:
#   vmtest/run.sh                 build the nsjail cgroup tests for musl and run them
#   vmtest/run.sh BIN...          run these prebuilt static test binaries instead
# Environment:
#   VM_TIMEOUT   seconds per boot (default 300)
#   VM_TESTS     cargo --test targets to build (default "cgroup_v2")
#   VM_MEM       guest memory in MiB (default 1024)
#   VM_KERNEL_PKG  kernel package (default: what linux-image-cloud-amd64 depends on)
#   VM_KEEP      keep the work directory (its path is printed)
#
# Output: one `PASS name`, `FAIL name` or `SKIP name: reason` line per test,
# then `N passed, N failed, N skipped`. Exit 0 when nothing failed, 1 when a
# test failed (a vm_* test skipped inside the guest counts as failed), 2 when
# the harness itself could not run (missing tool, no kernel, guest did not
# finish) — never a silent pass.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache="$here/.cache"
timeout_s=${VM_TIMEOUT:-300}
mem=${VM_MEM:-1024}
target=x86_64-unknown-linux-musl

die() { echo "vmtest: ERROR: $*" >&2; exit 2; }

# --- 0. prerequisites ------------------------------------------------------
missing=()
for t in qemu-system-x86_64 busybox cpio gzip apt-get apt-cache dpkg-deb timeout; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (apt-get install qemu-system-x86 busybox-static cpio)"
busybox_bin=$(command -v busybox)
if ! file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked'; then
    [ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' && busybox_bin=/bin/busybox \
        || die "$busybox_bin is not statically linked (install busybox-static)"
fi

# --- 1. test binaries ------------------------------------------------------
bins=()
if [ $# -gt 0 ]; then
    for b in "$@"; do
        [ -x "$b" ] || die "not an executable: $b"
        bins+=("$(readlink -f "$b")")
    done
else
    command -v cargo >/dev/null || die "cargo not found"
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
        die "rustup target $target is not installed (rustup target add $target)"
    fi
    args=()
    for t in ${VM_TESTS:-cgroup_v2}; do args+=(--test "$t"); done
    echo "vmtest: building ${VM_TESTS:-cgroup_v2} for $target" >&2
    json=$(cd "$repo" && cargo test -p nsjail --target "$target" "${args[@]}" --no-run \
        --message-format=json-render-diagnostics) || die "cargo build for $target failed"
    while IFS= read -r exe; do
        [ -n "$exe" ] && bins+=("$exe")
    done < <(printf '%s\n' "$json" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    # only the test harness executables, not the nsjail binary built for them
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])
')
    # the nsjail binary the tests launch (env!("CARGO_BIN_EXE_nsjail")): same path in the guest
    nsjail_bin=$(printf '%s\n' "$json" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["bin"] and m["target"]["name"] == "nsjail":
        print(m["executable"])
')
    [ ${#bins[@]} -gt 0 ] || die "cargo produced no test executable"
fi
for b in "${bins[@]}" ${nsjail_bin:-}; do
    file -L "$b" | grep -Eq 'statically linked|static-pie linked' || die "$b is not a static binary (build with --target $target)"
done

# --- 2. kernel -------------------------------------------------------------
mkdir -p "$cache"
pkg=${VM_KERNEL_PKG:-$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends:/{print $2; exit}')}
[ -n "$pkg" ] || die "cannot resolve the kernel package (apt-cache depends linux-image-cloud-amd64); run apt-get update or set VM_KERNEL_PKG"
kernel="$cache/vmlinuz-$pkg"
if [ ! -s "$kernel" ]; then
    deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
        echo "vmtest: apt-get download $pkg" >&2
        (cd "$cache" && apt-get download "$pkg" 2>&1 | grep -v -i 'unsandboxed' >&2) || true
        deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)
        [ -n "$deb" ] || die "apt-get download $pkg failed"
    fi
    x=$(mktemp -d)
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/vmlinuz-*'
    mv "$x"/boot/vmlinuz-* "$kernel"
    rm -rf "$x"
fi

# --- 3. initramfs ----------------------------------------------------------
work=$(mktemp -d /tmp/nsjail-vmtest.XXXXXX)
cleanup() { if [ -n "${VM_KEEP:-}" ]; then echo "vmtest: kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,etc,newroot,tests/bin}
chmod 755 "$root"
cp "$busybox_bin" "$root/bin/busybox"
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
for b in "${bins[@]}"; do
    name=$(basename "$b"); name=${name%-*}    # strip cargo's hash suffix
    cp "$b" "$root/tests/bin/$name"
done
if [ -n "${nsjail_bin:-}" ]; then
    mkdir -p "$root$(dirname "$nsjail_bin")"
    cp "$nsjail_bin" "$root$nsjail_bin"
fi
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# Copy the initramfs onto a real tmpfs (pivot_root does not work on rootfs).
if [ -z "$VMTEST_SWITCHED" ]; then
    /bin/busybox mount -t tmpfs -o mode=755 tmpfs /newroot
    for e in /*; do [ "$e" = /newroot ] || /bin/busybox cp -a "$e" /newroot/; done
    export VMTEST_SWITCHED=1
    exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
ip link set lo up 2>/dev/null
export NSJAIL_VMTEST=1 RUST_BACKTRACE=0
exec >/dev/ttyS1 2>&1
echo "=== KERNEL $(uname -r) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
for t in /tests/bin/*; do
    n=${t##*/}
    echo "=== RUN $n"
    "$t" --test-threads=1 --nocapture
    echo "=== EXIT $n $?"
done
echo "=== LEFT $(find /sys/fs/cgroup -mindepth 1 -type d | tr '\n' ' ')"
echo VMTEST-DONE
sync
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$work/initrd.gz"

# --- 4. boot ---------------------------------------------------------------
echo "vmtest: booting $(basename "$kernel") (TCG, timeout ${timeout_s}s) with: $(ls "$root/tests/bin" | tr '\n' ' ')" >&2
start=$(date +%s)
set +e
timeout --foreground "$timeout_s" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -machine q35 \
    -smp 2 -m "$mem" -nographic -no-reboot -nodefaults \
    -serial "file:$work/console.log" -serial "file:$work/report.txt" \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all" </dev/null >"$work/qemu.out" 2>&1
qrc=$?
set -e
echo "vmtest: guest ran $(( $(date +%s) - start ))s (qemu rc $qrc)" >&2

# --- 5. verdict ------------------------------------------------------------
tr -d '\r' <"$work/report.txt" >"$work/report.clean" 2>/dev/null || true
if ! grep -q '^VMTEST-DONE' "$work/report.clean"; then
    echo "vmtest: ERROR: the guest did not finish (timeout ${timeout_s}s or crash); console tail:" >&2
    tail -n 30 "$work/console.log" >&2 || true
    tail -n 30 "$work/report.clean" >&2 || true
    cat "$work/qemu.out" >&2 || true
    exit 2
fi
[ -n "${VM_VERBOSE:-}" ] && cat "$work/report.clean" >&2
awk '
    function finish(result) {
        if (name == "") return
        if (result == "ok" && skip != "") {
            if (name ~ /^vm_/) { print "FAIL " bin "::" name " (skipped in the VM: " skip ")"; failed++ }
            else { print "SKIP " bin "::" name ": " skip; skipped++ }
        } else if (result == "ok") { print "PASS " bin "::" name; passed++ }
        else { print "FAIL " bin "::" name; failed++; for (i = 0; i < nout; i++) print "    " out[i] }
        cnt[bin]++; name = ""; skip = ""; nout = 0
    }
    /^=== KERNEL/ { print "guest: " substr($0, 5) }
    /^=== RUN / { bin = $3; ran[bin] = 1; next }
    /^=== EXIT / {
        if ($4 != 0) badexit[$3] = $4
        next
    }
    /^=== LEFT/ { left = substr($0, 10); next }
    /^test .* \.\.\. / {
        finish("")
        line = $0; sub(/^test /, "", line)
        name = line; sub(/ \.\.\. .*/, "", name)
        rest = line; sub(/^[^ ]* \.\.\. /, "", rest)
        if (rest ~ /SKIP [^ ]+: /) { skip = rest; sub(/.*SKIP [^ ]+: /, "", skip) }
        if (rest ~ /(^|[^A-Za-z])ok$/) finish("ok")
        else if (rest ~ /FAILED$/) finish("FAILED")
        next
    }
    name != "" && /^SKIP [^ ]+: / { skip = $0; sub(/^SKIP [^ ]+: /, "", skip); next }
    name != "" && /^ok$/ { finish("ok"); next }
    name != "" && /^FAILED$/ { finish("FAILED"); next }
    name != "" && /(^|[^A-Za-z])ok$/ && /SKIP [^ ]+: / { s = $0; sub(/.*SKIP [^ ]+: /, "", s); sub(/ok$/, "", s); skip = s; finish("ok"); next }
    name != "" { if (nout < 40) out[nout++] = $0 }
    END {
        finish("FAILED")
        for (b in badexit) if (cnt[b] == 0 || badexit[b] != 101) { print "FAIL " b " (exit " badexit[b] ")"; failed++ }
        if (left != "" && left !~ /^ *$/) { print "FAIL leftover cgroups in the guest: " left; failed++ }
        printf "%d passed, %d failed, %d skipped\n", passed, failed, skipped
        exit failed > 0 ? 1 : 0
    }
' "$work/report.clean"
