#!/usr/bin/env bash
# Runs the README's two commands, verbatim, as a new user would on a fresh Debian or Ubuntu: a minimal root made
# with debootstrap, a clone of this checkout's HEAD inside it, then as root inside that root
#   bash scripts/setup.sh && .venv/bin/python -m pytest -q -n auto tests      (set up and test)
#   bash scripts/demo.sh                                              (the main job, with a short budget)
# and prints a summary. Needs root, debootstrap and git on this machine, and the archive reachable.
#
#   sudo bash scripts/check_fresh_machine.sh                      # Debian 12 (bookworm)
#   sudo SUITE=noble MIRROR=http://archive.ubuntu.com/ubuntu bash scripts/check_fresh_machine.sh
#
# ROOT (default /tmp/fresh-$SUITE) is made anew each time. DEMO_MINUTES (default 1) is the demo's training
# budget per model (0: skip the demo). TESTS (default: the whole suite) narrows pytest's selection.
# Where this machine's pip is configured with package mirrors of its own (files in /etc/pip.conf,
# /etc/xdg/pip and PIP_* variables naming local folders), the root gets the same configuration and folders,
# read-only: the packages come from where this machine's would, the set-up inside is otherwise untouched.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=${ROOT:-/tmp/fresh-$SUITE}
DEMO_MINUTES=${DEMO_MINUTES:-1}
TESTS=${TESTS:-tests}
SETUP_AND_TEST="bash scripts/setup.sh && .venv/bin/python -m pytest -q -n auto $TESTS"
MAIN_JOB="bash scripts/demo.sh"
[ "$(id -u)" = 0 ] || { echo "check_fresh_machine: run it as root (debootstrap and chroot need it)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "check_fresh_machine: apt-get install debootstrap" >&2; exit 2; }

mounts=()
cleanup() {
    local i
    for ((i=${#mounts[@]}-1; i>=0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind SRC DST [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2"
    mounts+=("$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

t0=$(date +%s)
echo "== debootstrap --variant=minbase $SUITE $ROOT $MIRROR"
rm -rf "$ROOT"
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 \
    || { tail -20 "$ROOT.debootstrap.log"; exit 1; }
t_root=$(( $(date +%s) - t0 ))
git clone -q --no-hardlinks "$REPO" "$ROOT/root/tacotron2"
echo "   cloned $(git -C "$REPO" rev-parse --short HEAD) into $ROOT/root/tacotron2"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
bind /proc "$ROOT/proc"; bind /sys "$ROOT/sys"; bind /dev "$ROOT/dev"; bind /dev/pts "$ROOT/dev/pts"

# this machine's package mirrors and CA bundle, as they are configured here
envs=(HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb)
for conf in /etc/pip.conf /etc/xdg/pip; do
    if [ -e "$conf" ]; then mkdir -p "$ROOT$(dirname "$conf")"; cp -r "$conf" "$ROOT$(dirname "$conf")/"; fi
done
for var in $(compgen -e | grep '^PIP_' || true); do envs+=("$var=${!var}"); done
declare -A seen=()
for path in $( { cat /etc/pip.conf /etc/xdg/pip/* 2>/dev/null; env | grep '^PIP_'; } | grep -oE '(file://)?/[^ ]+'                | sed 's|^file://||; s|/simple/*$||'); do
    if [ -d "$path" ] && [ -z "${seen[$path]:-}" ]; then seen[$path]=1; bind "$path" "$ROOT$path" ro; fi
done
ca=$( { grep -hoE '^cert *= *[^ ]+' /etc/pip.conf 2>/dev/null | sed 's/.*= *//'; echo "${PIP_CERT:-}"; } | tail -1)
if [ -n "$ca" ] && [ -f "$ca" ]; then  # a bundle of its own path: an apt package in the root may not replace it
    cp "$ca" "$ROOT/etc/host-ca-bundle.crt"
    envs+=(PIP_CERT=/etc/host-ca-bundle.crt)
fi

inside() {  # inside COMMAND: run it in the root as a login shell would, in the clone, as root
    chroot "$ROOT" /usr/bin/env -i "${envs[@]}" bash -c "cd /root/tacotron2 && $1"
}
os=$(. "$ROOT/etc/os-release" && echo "$PRETTY_NAME")
echo "== $os: $SETUP_AND_TEST"
t1=$(date +%s)
set +e
inside "$SETUP_AND_TEST" 2>&1 | tee "$ROOT.test.log"
test_status=${PIPESTATUS[0]}
t_test=$(( $(date +%s) - t1 ))
demo_status=skipped; t_demo=0
if [ "$DEMO_MINUTES" != 0 ] && [ "$test_status" = 0 ]; then
    echo "== $os: MINUTES=$DEMO_MINUTES WG_MINUTES=$DEMO_MINUTES $MAIN_JOB"
    t2=$(date +%s)
    inside "MINUTES=$DEMO_MINUTES WG_MINUTES=$DEMO_MINUTES OUT=/root/demo $MAIN_JOB" > "$ROOT.demo.log" 2>&1
    demo_status=$?
    t_demo=$(( $(date +%s) - t2 ))
    tail -25 "$ROOT.demo.log"
    [ -f "$ROOT/root/demo/index.html" ] || demo_status="$demo_status, no index.html"
fi
set -e
echo
echo "== summary: $os ($SUITE, minbase), $(uname -m), clone of $(git -C "$REPO" rev-parse --short HEAD)"
echo "   root made in ${t_root} s; python $(chroot "$ROOT" python3 --version 2>&1 | cut -d' ' -f2)"
echo "   set up and test: exit $test_status in ${t_test} s: $(grep -E '[0-9]+ (passed|failed)' "$ROOT.test.log" | tail -1)"
echo "   main job: exit $demo_status in ${t_demo} s (log: $ROOT.demo.log)"
[ "$test_status" = 0 ] && { [ "$demo_status" = 0 ] || [ "$demo_status" = skipped ]; }
