#!/usr/bin/env bash
# Install what the test suite needs, only when it is missing: the Rust lint
# components and test runner, the S3 servers (moto, Garage) and the Python
# tooling. Idempotent and fast when all is there, because scripts/test runs it
# every time, on dev machines and on fresh CI. Anything that cannot be
# installed fails this script: the suite never runs with a piece missing.
set -euo pipefail

# pip requirement | python module whose import proves it is installed.
# Extend this list when tests need more Python packages.
PIP_PACKAGES=(
  "moto[server]|moto.server"
  "maturin|maturin"
  "pytest|pytest"
  "fsspec|fsspec"
  "pandas|pandas"
  # cairn serve's tests drive it with unchanged boto3 programs and the aws cli.
  "boto3|boto3"
  "awscli|awscli"
)

# Garage 2.x is what the tests are written against; pinned for reproducibility.
GARAGE_VERSION="${GARAGE_VERSION:-2.5.0}"

PYTHON="${PYTHON:-python3}"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

log() { printf 'install: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# --- Rust: rustfmt and clippy (lint steps), cargo-nextest (one process per
# test, which the memory-budget tests rely on) ---------------------------------
for entry in "rustfmt|fmt" "clippy|clippy"; do
  comp="${entry%%|*}"
  sub="${entry#*|}"
  if cargo "$sub" --version >/dev/null 2>&1; then
    continue
  fi
  command -v rustup >/dev/null 2>&1 ||
    die "cargo $sub is missing and there is no rustup to add the $comp component"
  log "rustup component add $comp"
  rustup component add "$comp" || die "could not add the $comp component"
  cargo "$sub" --version >/dev/null 2>&1 || die "cargo $sub still fails after adding $comp"
done
# curl plays the outside client of presigned URLs in the CLI tests.
if ! command -v curl >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "curl is missing and there is no apt-get to install it"
  log "apt-get install curl"
  { apt-get update -qq && apt-get install -y -qq curl; } >/dev/null || die "could not install curl"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  log "building cargo-nextest with cargo install (a few minutes)"
  cargo install --locked cargo-nextest || die "could not install cargo-nextest"
  command -v cargo-nextest >/dev/null 2>&1 || die "cargo-nextest is not on PATH after install"
fi
log "rust tooling present: rustfmt, clippy, $(cargo nextest --version 2>/dev/null | head -n 1)"

# --- Python packages -------------------------------------------------------
missing=()
for entry in "${PIP_PACKAGES[@]}"; do
  req="${entry%%|*}"
  mod="${entry#*|}"
  if ! "$PYTHON" -c "import $mod" >/dev/null 2>&1; then
    missing+=("$req")
  fi
done
if ((${#missing[@]})); then
  log "pip installing: ${missing[*]}"
  # PIP_BREAK_SYSTEM_PACKAGES lets pip work on distro pythons (PEP 668);
  # older pips ignore it.
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install --quiet \
    --disable-pip-version-check "${missing[@]}"
  for entry in "${PIP_PACKAGES[@]}"; do
    "$PYTHON" -c "import ${entry#*|}" >/dev/null 2>&1 ||
      die "${entry%%|*} does not import after pip install"
  done
else
  log "python packages present"
fi

# --- Garage ----------------------------------------------------------------
if command -v garage >/dev/null 2>&1; then
  log "garage present: $(command -v garage)"
else
  # Building Garage takes 10+ minutes on 2 cores. Hold a lock so two test runs
  # on one machine do not build it twice, and re-check after getting it.
  mkdir -p "$CARGO_BIN"
  lock="${CARGO_HOME:-$HOME/.cargo}/.cairn-garage-install.lock"
  exec 9>"$lock"
  if command -v flock >/dev/null 2>&1; then
    flock 9
  fi
  if ! command -v garage >/dev/null 2>&1; then
    log "building garage $GARAGE_VERSION with cargo install (slow, ~10+ min)"
    cargo install garage --locked --version "$GARAGE_VERSION"
  fi
  exec 9>&-
  command -v garage >/dev/null 2>&1 || {
    log "garage still not on PATH after install"
    exit 1
  }
fi
