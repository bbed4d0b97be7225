# shellcheck shell=bash
# Shared steps of scripts/quickstart and scripts/test. Source it; it expects bash and root.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
CACHE="$ROOT/.cache"
DOCKERD_LOG=/var/log/runcvm-dockerd.log
# Debian packages the host needs: Docker itself, debootstrap for the image factory, venv for
# the pinned Python tools, git because ansible-test reads the file list from it, and patchelf
# and kmod (depmod) to build the payload and the guest kernels, zstd and lz4 to store the
# kernels uncompressed.
HOST_PACKAGES=(docker.io debootstrap python3-venv git ca-certificates patchelf kmod zstd lz4)

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" = 0 ] || die "run this as root (it installs packages and starts dockerd)"
}

ensure_host_packages() {
    local missing=() package
    for package in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        step "Debian packages present: ${HOST_PACKAGES[*]}"
        return
    fi
    step "Installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The virtual environment is rebuilt whenever requirements/dev.txt changes.
ensure_venv() {
    local wanted
    wanted=$(sha256sum "$ROOT/requirements/dev.txt" | cut -d' ' -f1)
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements-sha256" 2>/dev/null)" = "$wanted" ]; then
        step "Python tools up to date in $VENV"
        return
    fi
    step "Creating the Python environment in $VENV (pinned in requirements/dev.txt)"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements/dev.txt"
    echo "$wanted" > "$VENV/.requirements-sha256"
}

ensure_dockerd() {
    if docker info >/dev/null 2>&1; then
        step "dockerd is running"
        return
    fi
    step "Starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null &
    local waited=0
    until docker info >/dev/null 2>&1; do
        sleep 1
        waited=$((waited + 1))
        [ $waited -lt 60 ] || die "dockerd did not answer within 60 s; see $DOCKERD_LOG"
    done
}

# Builds the collection tarball and installs it into the given collections path.
install_collection() {
    local collections_path=$1 tarball
    step "Building the collection and installing it into $collections_path"
    mkdir -p "$CACHE/dist"
    rm -f "$CACHE"/dist/runcvm-runcvm-*.tar.gz
    (cd "$ROOT" && "$VENV/bin/ansible-galaxy" collection build --force --output-path "$CACHE/dist" >/dev/null)
    tarball=$(ls "$CACHE"/dist/runcvm-runcvm-*.tar.gz)
    "$VENV/bin/ansible-galaxy" collection install --force --no-deps -p "$collections_path" "$tarball" >/dev/null
}

image_factory() {
    PYTHONPATH="$ROOT/tools" "$VENV/bin/python" -m image_factory "$@"
}

# Makes this tree importable as ansible_collections.runcvm.runcvm, the name its plugins use.
collection_pythonpath() {
    local root="$CACHE/collection-root"
    mkdir -p "$root/ansible_collections/runcvm"
    ln -sfn "$ROOT" "$root/ansible_collections/runcvm/runcvm"
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
}
