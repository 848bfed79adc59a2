#!/usr/bin/env bash
# Builds the real Dockerfile offline and puts the image through the checks an
# operator relies on: it runs as non-root, keeps SQLite on the /data volume,
# answers its HEALTHCHECK, drains on SIGTERM within the grace period, and
# serves from Postgres by URL. Prints the image size.
#
#   sudo bash scripts/container-check.sh          # build base images if missing, build, check
#   REBUILD_BASES=1 bash scripts/container-check.sh
#
# No registry is needed: the two base images the Dockerfile names are made
# locally (a Debian rootfs by debootstrap with this machine's Rust toolchain
# copied in, and a minimal runtime rootfs from Debian packages) and imported
# under those names. Needs root, apt (podman, runc, debootstrap) and, for the
# Postgres check, a server on 127.0.0.1:5432 that trusts local connections.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_IMAGE=docker.io/library/rust:1.95-bookworm
RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
IMAGE=localhost/sesame:check
WORK=${WORK:-target/container}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# podman's default runtime (crun) cannot set rlimits or use hybrid cgroups in
# this kind of sandbox; runc with explicit ulimits can.
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

step "tools"
need=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" uidmap >/dev/null
fi
podman --version

have_image() { podman image exists "$1"; }

if [ -n "${REBUILD_BASES:-}" ] || ! have_image "$BUILD_IMAGE"; then
    step "build base image $BUILD_IMAGE (debootstrap + this machine's Rust toolchain)"
    root="$WORK/build-rootfs"
    rm -rf "$root"
    debootstrap --variant=minbase --include=gcc,libc6-dev,pkg-config,ca-certificates \
        bookworm "$root" http://deb.debian.org/debian >"$WORK/debootstrap.log"
    toolchain=$(rustc --print sysroot)
    mkdir -p "$root/usr/local/rustup/toolchains" "$root/usr/local/cargo/bin"
    cp -a "$toolchain" "$root/usr/local/rustup/toolchains/"
    for bin in cargo rustc rustdoc; do
        ln -sf "/usr/local/rustup/toolchains/$(basename "$toolchain")/bin/$bin" "$root/usr/local/cargo/bin/$bin"
    done
    # crates.io is reached through this network's TLS inspection: trust what
    # the host trusts.
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$root" update-ca-certificates >/dev/null
    rm -rf "$root/var/cache/apt/archives/"*.deb
    tar -C "$root" -c . | podman import \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
        - "$BUILD_IMAGE" >/dev/null
    rm -rf "$root"
fi

if [ -n "${REBUILD_BASES:-}" ] || ! have_image "$RUNTIME_IMAGE"; then
    step "build base image $RUNTIME_IMAGE (glibc, CA bundle, tzdata, user nonroot)"
    root="$WORK/runtime-rootfs"
    debs="$WORK/debs"
    rm -rf "$root" "$debs"
    mkdir -p "$root" "$debs"
    (cd "$debs" && apt-get download -qq base-files libc6 libgcc-s1 libstdc++6 libssl3 \
        tzdata netbase ca-certificates >/dev/null)
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
    # ca-certificates ships the certificates; the bundle is made at install.
    mkdir -p "$root/etc/ssl/certs"
    find "$root/usr/share/ca-certificates" -name '*.crt' -exec cat {} + >"$root/etc/ssl/certs/ca-certificates.crt"
    cat >"$root/etc/passwd" <<PW
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PW
    cat >"$root/etc/group" <<GR
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GR
    mkdir -p "$root/home/nonroot" "$root/tmp" && chmod 1777 "$root/tmp"
    chown 65532:65532 "$root/home/nonroot"
    rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian"
    tar -C "$root" -c . | podman import --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
        - "$RUNTIME_IMAGE" >/dev/null
    rm -rf "$root" "$debs"
fi

step "build the Dockerfile (offline: --pull=never)"
start=$(date +%s)
# The docker format keeps HEALTHCHECK (OCI drops it).
podman build --pull=never --format docker --isolation=chroot -t "$IMAGE" . 
echo "built in $(( $(date +%s) - start )) s"

step "image"
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "size: $(( size / 1000000 )) MB"
user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
[ "$user" = "65532:65532" ] || fail "image runs as '$user', not 65532:65532"
podman image inspect "$IMAGE" --format '{{json .Config.Volumes}}' | grep -q '"/data"' || fail "no /data volume"
podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}' | grep -q healthcheck \
    || fail "no HEALTHCHECK (built without --format docker?)"
echo "user $user, volume /data, HEALTHCHECK sesame healthcheck"

# The runtime image holds its base, the binary and the example config.
echo "binary: $(podman run --rm --entrypoint /usr/local/bin/sesame "$IMAGE" --version)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # port
    for _ in $(seq 1 60); do
        curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
KEY=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
cleanup() {
    for c in sesame-check-sqlite sesame-check-pg; do podman rm -f "$c" >/dev/null 2>&1 || true; done
    podman volume rm -f sesame-check-data >/dev/null 2>&1 || true
    [ -n "${PG_DB:-}" ] && psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

step "SQLite on the /data volume"
port=$(free_port)
podman volume create sesame-check-data >/dev/null
run_sqlite() {
    podman run -d --health-interval=disable --name sesame-check-sqlite --network host \
        -e SESAME_LISTEN="127.0.0.1:$port" -e SESAME_ISSUER="http://127.0.0.1:$port" \
        -e SESAME_MASTER_KEY="$KEY" \
        -v sesame-check-data:/data "$IMAGE" >/dev/null
}
run_sqlite
wait_ready "$port" || { podman logs sesame-check-sqlite; fail "not ready"; }
uid=$(podman exec sesame-check-sqlite /usr/local/bin/sesame --version >/dev/null && podman top sesame-check-sqlite huser user | tail -1)
echo "process user: $uid"
echo "$uid" | grep -qw 65532 || fail "process is not uid 65532"
curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration" | grep -q "\"issuer\":\"http://127.0.0.1:$port\"" \
    || fail "discovery does not name the issuer"
podman exec sesame-check-sqlite sesame user add --email owner@example.com --password 'container check passphrase' >/dev/null \
    || fail "sesame user add in the container"
podman healthcheck run sesame-check-sqlite && echo "HEALTHCHECK: healthy" || fail "HEALTHCHECK failed"

step "SIGTERM drains: a request in flight completes, the process exits 0 within the grace period"
# A request whose body arrives slowly (6 KB at 2 KB/s) is in flight when the
# stop comes; it must still get its answer.
head -c 6000 /dev/zero | tr '\0' 'a' | sed 's/^/grant_type=x\&pad=/' >"$WORK/slow-body"
curl -sS -o /dev/null -w '%{http_code}' --limit-rate 2k --data-binary @"$WORK/slow-body" \
    "http://127.0.0.1:$port/token" >"$WORK/slow-status" 2>"$WORK/slow-error" &
slow=$!
sleep 0.7
start=$(date +%s.%N)
podman stop -t 20 sesame-check-sqlite >/dev/null
took=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
wait "$slow" || true
code=$(podman inspect sesame-check-sqlite --format '{{.State.ExitCode}}')
echo "stopped in ${took} s, exit code $code; the request in flight got HTTP $(cat "$WORK/slow-status")"
[ "$code" = 0 ] || { podman logs sesame-check-sqlite | tail -5; fail "exit code $code after SIGTERM"; }
python3 -c "import sys; sys.exit(0 if $took < 20 else 1)" || fail "did not stop within the grace period"
grep -q '^4' "$WORK/slow-status" || fail "the request in flight was cut off: $(cat "$WORK/slow-error")"
podman logs sesame-check-sqlite 2>&1 | grep -q 'finishing in-flight requests' || fail "no drain in the log"

step "the data outlives the container"
podman rm sesame-check-sqlite >/dev/null
run_sqlite
wait_ready "$port" || fail "not ready after restart"
podman exec sesame-check-sqlite sesame user list | grep -q owner@example.com || fail "the user did not survive the restart"
echo "owner@example.com still there"
podman rm -f sesame-check-sqlite >/dev/null

step "Postgres by URL"
if pg_isready -h 127.0.0.1 -p 5432 -q; then
    PG_DB="sesame_container_$$"
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null
    port=$(free_port)
    podman run -d --health-interval=disable --name sesame-check-pg --network host \
        -e SESAME_LISTEN="127.0.0.1:$port" -e SESAME_ISSUER="http://127.0.0.1:$port" \
        -e SESAME_MASTER_KEY="$KEY" -e SESAME_DATABASE_URL="$PG_URL/$PG_DB" "$IMAGE" >/dev/null
    wait_ready "$port" || { podman logs sesame-check-pg; fail "not ready on Postgres"; }
    podman exec sesame-check-pg sesame migrate --check >/dev/null || fail "migrate --check after start"
    curl -fsS "http://127.0.0.1:$port/jwks" | grep -q '"keys"' || fail "no JWKS from Postgres"
    podman healthcheck run sesame-check-pg && echo "HEALTHCHECK on Postgres: healthy" || fail "HEALTHCHECK failed"
    podman stop -t 20 sesame-check-pg >/dev/null
    echo "served from $PG_DB, stopped with exit code $(podman inspect sesame-check-pg --format '{{.State.ExitCode}}')"
else
    fail "no Postgres on 127.0.0.1:5432"
fi

step "all checks passed (image $IMAGE, $(( size / 1000000 )) MB)"
