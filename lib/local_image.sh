#!/usr/bin/env bash
# Summary: build the cloud jobs' image of a DonkeyCar generation on this machine
# Usage: lib/local_image.sh [-d 5.3|5.4] [-s DONKEYCAR_SOURCE]
#
# Builds ./Dockerfile, the image the Vertex AI jobs run, into this machine's
# image store as robocar-trainer:dk5.3 (or :dk5.4), from the files
# .gcloudignore lets through (what Cloud Build gets). `make image` runs it.
# The builder is the first that works here: docker with a running engine,
# else podman, else buildah; as root on Debian or Ubuntu, podman is
# installed with apt-get when there is none.
#
# Where the official base image (python:3.11-slim-bookworm, or 3.12) cannot
# be pulled, a stand-in is made on a Debian bookworm machine from the Debian
# archive and this machine's own Python 3.11 (or 3.12) build, and stored
# under the official name, with a warning: an image built on it is for
# tests here and must never be pushed.
#
# With -s, the image of a DonkeyCar of your own follows (a fork, a branch, a
# checkout; docs/donkeycar-source.md): the stock image with only DonkeyCar
# replaced by a wheel pip builds here from SPEC (Dockerfile.donkeycar), a
# layer of a few MB, tagged with its content: robocar-trainer:dk5.3-<12 hex>.
# `make image DONKEYCAR_SOURCE=SPEC` runs it so.
#
#   -d 5.3|5.4   the DonkeyCar generation (default: 5.3)
#   -s SPEC      your DonkeyCar: a version, a pip requirement such as
#                'donkeycar @ git+https://github.com/ORG/donkeycar@BRANCH', or
#                a checkout folder
#   -h           print this help
#
# Environment: IMAGE_BUILDER=docker|podman|buildah picks the builder.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
rt_find_python
# Scratch space of the build: the context, podman's settings, the stand-in base.
WORK=$ROOT/build/image
# An image carrying this label was made from the Debian archive, not pulled.
STANDIN_LABEL=robocar-trainer.stand-in

warn() {
  echo "$PROG: WARNING: $*" >&2
}

generation=5.3
source_spec=
while getopts ':d:s:h' opt; do
  case $opt in
    d) generation=$OPTARG ;;
    s) source_spec=$OPTARG ;;
    h) rt_help; exit 0 ;;
    :) rt_usage_error "-$OPTARG needs a value" ;;
    *) rt_usage_error "unknown flag -$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
[ "$#" -eq 0 ] || rt_usage_error "unexpected argument '$1' (flags only)"

# The Python of the generation, from the one table (trainer/core/generations.py).
python=$("$PY" -m trainer --prog "$PROG" trainer.core.generations python "$generation") ||
  exit 1
tag=robocar-trainer:dk$generation
base=docker.io/library/python:$python-slim-bookworm

# The lock file is what makes the image the environment the tests passed in.
[ -f "$ROOT/locks/dk$generation.txt" ] ||
  die "locks/dk$generation.txt is missing: run make lock after the tests pass on that generation"

as_root_apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "$PROG: installing $* with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}

pick_builder() {
  if [ -n "${IMAGE_BUILDER:-}" ]; then
    case $IMAGE_BUILDER in
      docker | podman | buildah) ;;
      *) die "IMAGE_BUILDER=$IMAGE_BUILDER: use docker, podman or buildah" ;;
    esac
    command -v "$IMAGE_BUILDER" >/dev/null 2>&1 ||
      die "IMAGE_BUILDER=$IMAGE_BUILDER is not installed: install it, or unset IMAGE_BUILDER"
    builder=$IMAGE_BUILDER
  # A docker client without an engine (docker info fails) cannot build.
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    builder=docker
  elif command -v podman >/dev/null 2>&1; then
    builder=podman
  elif command -v buildah >/dev/null 2>&1; then
    builder=buildah
  elif as_root_apt_install podman runc; then
    builder=podman
  else
    die "no container builder here: install podman (sudo apt-get install podman runc) or Docker, then run make image again"
  fi
}

# podman and buildah read their settings from CONTAINERS_CONF: runc, because
# crun cannot start containers under cgroups v1 hybrid mode, and limits on
# open files and processes that a container without CAP_SYS_RESOURCE may set
# (the defaults are higher; processes at this machine's own hard limit fail
# too, 32768 works). The tests run the image with the same settings.
write_containers_conf() {
  local conf=$WORK/containers.conf nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [ "$nproc" != unlimited ] && [ "$nproc" -lt 32768 ] || nproc=32768
  {
    echo "# Written by lib/local_image.sh for podman and buildah on this machine."
    echo "[containers]"
    echo "default_ulimits = ["
    [ "$nofile" = unlimited ] || echo "  \"nofile=$nofile:$nofile\","
    echo "  \"nproc=$nproc:$nproc\","
    echo "]"
    if command -v runc >/dev/null 2>&1; then
      echo "[engine]"
      echo 'runtime = "runc"'
    fi
  } >"$conf"
  export CONTAINERS_CONF=$conf
}

image_exists() {
  case $builder in
    docker) docker image inspect "$1" >/dev/null 2>&1 ;;
    podman) podman image exists "$1" ;;
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
  esac
}

image_id() {
  case $builder in
    buildah) buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true ;;
    *) "$builder" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true ;;
  esac
}

is_standin() {
  local labels
  case $builder in
    buildah) labels=$(buildah inspect --type image --format '{{.OCIv1.Config.Labels}}' "$1") ;;
    *) labels=$("$builder" image inspect --format '{{.Config.Labels}}' "$1") ;;
  esac
  [[ $labels == *"$STANDIN_LABEL"* ]]
}

# buildah's pull is content with a local image of that name, the stand-in too.
pull_quietly() {
  local -a always=()
  [ "$builder" != buildah ] || always=(--policy always)
  "$builder" pull "${always[@]}" "$1" >/dev/null 2>&1
}

# A CPython X.Y built on this machine, which is Debian bookworm like the
# official image: its prefix, or nothing. Debian's own python3 (3.11.2) cannot
# stand in, as it lacks tarfile's extraction filters (3.11.4+), which the
# toolkit's archive extraction relies on.
host_python() {
  local candidate
  for candidate in "python$python" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$python".*/bin/"python$python"; do
    if "$candidate" -c 'import sys, tarfile; sys.exit(not hasattr(tarfile, "data_filter"))' 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.base_prefix)'
      return
    fi
  done
}

# The stand-in is what the official slim image is: Debian bookworm's minimal
# system from the Debian archive, with CPython in /usr/local, pip, and
# python/pip on PATH. The CPython is this machine's own build (without the
# packages installed into it here), the system libraries it links to come
# from the archive. pip is told to trust the system's certificate
# authorities, as Debian's own pip does.
make_standin() {
  local codename prefix tar=$WORK/standin-bookworm.tar
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ "$codename" = bookworm ] ||
    die "cannot pull $base, and this machine is not Debian bookworm, whose own build of Python $python could stand in for it: build DonkeyCar $generation where Docker Hub is reachable, or with ./build_image.sh -d $generation"
  prefix=$(host_python)
  [ -n "$prefix" ] ||
    die "cannot pull $base, and this machine has no Python $python (3.11.4 or later) to stand in for it: install one (e.g. pyenv install $python), or build where Docker Hub is reachable"
  command -v mmdebstrap >/dev/null 2>&1 || as_root_apt_install mmdebstrap ||
    die "mmdebstrap is missing to build a stand-in for $base: install it (sudo apt-get install mmdebstrap), or make Docker Hub reachable"
  # The Debian packages of the libraries that Python and its modules link to (Tk left out).
  local -a packages=(ca-certificates netbase tzdata)
  local lib
  while read -r lib; do
    packages+=("$( (dpkg -S "$lib" || dpkg -S "$(readlink -f "$lib")") 2>/dev/null | head -1 | cut -d: -f1)")
  done < <(find "$prefix/bin/python$python" "$prefix/lib/python$python/lib-dynload" \
             \( -name 'python*' -o -name '*.so' \) ! -name '_tkinter*' -exec ldd {} + 2>/dev/null |
           awk '$2 == "=>" && $3 ~ /^\// && $3 !~ /libpython/ {print $3}' | sort -u)
  local include
  include=$(printf '%s\n' "${packages[@]}" | grep . | sort -u | paste -sd, -)
  rm -f "$tar"
  # shellcheck disable=SC2016  # $1 and the variables are expanded by mmdebstrap's hooks
  STANDIN_PREFIX=$prefix STANDIN_PYTHON=python$python mmdebstrap --variant=minbase --quiet \
    --include="$include" \
    --customize-hook='tar -C "$STANDIN_PREFIX" --exclude="lib/$STANDIN_PYTHON/site-packages/*" \
        --exclude="lib/$STANDIN_PYTHON/test" --exclude="lib/$STANDIN_PYTHON/config-*" \
        --exclude="lib/$STANDIN_PYTHON/tkinter" --exclude="lib/$STANDIN_PYTHON/idlelib" \
        --exclude="lib/$STANDIN_PYTHON/turtledemo" --exclude="_tkinter*" --exclude=__pycache__ \
        -cf - "bin/$STANDIN_PYTHON" include lib/libpython3.so "lib/lib$STANDIN_PYTHON.so.1.0" \
        "lib/$STANDIN_PYTHON" | tar -C "$1/usr/local" -xf -' \
    --customize-hook='chroot "$1" ldconfig' \
    --customize-hook='chroot "$1" "$STANDIN_PYTHON" -m ensurepip --default-pip >/dev/null' \
    --customize-hook='ln -s "$STANDIN_PYTHON" "$1/usr/local/bin/python"' \
    --customize-hook='ln -s "$STANDIN_PYTHON" "$1/usr/local/bin/python3"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    bookworm "$tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" >&2 ||
    die "mmdebstrap could not build a stand-in for $base from the Debian archive: check that deb.debian.org is reachable"
  local label version
  version=$("$prefix/bin/python$python" -c 'import platform; print(platform.python_version())')
  label="$STANDIN_LABEL=debian-archive+python-$version"
  local cert=PIP_CERT=/etc/ssl/certs/ca-certificates.crt
  case $builder in
    buildah)
      local ctr
      ctr=$(buildah from scratch)
      buildah add --quiet "$ctr" "$tar" / >/dev/null
      buildah config --env LANG=C.UTF-8 --env "$cert" --cmd python3 --label "$label" "$ctr"
      buildah commit --quiet --rm "$ctr" "$base" >/dev/null
      ;;
    *)
      local -a quiet=()
      [ "$builder" = docker ] || quiet=(--quiet)
      "$builder" import "${quiet[@]}" --change 'ENV LANG=C.UTF-8' --change "ENV $cert" \
        --change 'CMD ["python3"]' --change "LABEL $label" "$tar" "$base" >/dev/null
      ;;
  esac
  rm -f "$tar"
}

# The official base when it can be had, else the stand-in (made once).
ensure_base() {
  if image_exists "$base" && ! is_standin "$base"; then
    return
  fi
  if pull_quietly "$base"; then
    echo "$PROG: pulled $base" >&2
    return
  fi
  if ! image_exists "$base"; then
    warn "cannot pull $base: building a stand-in for it from the Debian archive and this machine's Python $python (a minute or two)"
    make_standin
  fi
  standin="$tag is built on a stand-in for $base (Debian bookworm from the Debian archive, this machine's Python $python), not on the official image: use it for tests on this machine, never push it (./build_image.sh builds the real one with Cloud Build)"
  warn "$standin"
}

# The build context: the files .gcloudignore lets back in (its !/PATH lines),
# so the image here is built from what Cloud Build gets.
stage_context() {
  local ctx=$WORK/context
  local -a paths
  mapfile -t paths < <(sed -n 's|^!/||p' "$ROOT/.gcloudignore" | sed 's|/$||')
  [ "${#paths[@]}" -gt 0 ] || die ".gcloudignore lets no file through: it must list the Dockerfile's inputs as !/PATH"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  # Copied with their times, so the builder's layer cache sees unchanged files as such.
  tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - "${paths[@]}" | tar -C "$ctx" -xpf -
  context=$ctx
}

# build TAG CONTEXT BUILD_ARG...: CONTEXT/Dockerfile as TAG.
build() {
  local name=$1 ctx=$2 arg
  shift 2
  local -a args=(build)
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  args+=(--tag "$name" --file "$ctx/Dockerfile")
  case $builder in
    podman | buildah)
      # buildah caches layers only when asked; pip needs this machine's
      # certificate authorities where PyPI is reached through a proxy.
      [ "$builder" = podman ] || args+=(--layers)
      args+=(--network host)
      local ca=/etc/ssl/certs/ca-certificates.crt
      [ ! -f "$ca" ] || args+=(--volume "$ca:$ca:ro")
      ;;
  esac
  "$builder" "${args[@]}" "$ctx" ||
    die "building $name with $builder failed (its output is above): fix the cause, then run make image again"
}

# The image this build replaced, untagged now: it only shares the layers.
drop_previous() {
  if [ -n "$2" ] && [ "$2" != "$(image_id "$1")" ]; then
    "$builder" rmi "$2" >/dev/null 2>&1 || true
  fi
}

# -s SPEC: the wheel and its lock staged by trainer/client/forkimage.py (before
# the stock build, so that a bad SPEC fails first); sets fork_tag and content,
# both empty when SPEC is a PyPI release's content.
fork_tag=
content=
stage_fork() {
  local out
  out=$("$PY" -m trainer --prog "$PROG" trainer.client.forkimage -d "$generation" \
          --root "$ROOT" --into "$WORK/donkeycar" "$source_spec") || exit 1
  read -r fork_tag content <<<"$out"
  [ -z "$fork_tag" ] || fork_tag=${tag%:*}:$fork_tag
}

# Built on exactly the stock image just built (its id, where the builder takes one).
build_fork() {
  local base previous
  if [ -z "$content" ]; then
    echo "$PROG: $source_spec is DonkeyCar as PyPI released it: $tag is its image"
    return
  fi
  base=$tag
  [ "$builder" = docker ] || base=$(image_id "$tag")
  previous=$(image_id "$fork_tag")
  start=$SECONDS
  build "$fork_tag" "$WORK/donkeycar" "BASE=$base" "CONTENT=$content" "DONKEYCAR=$generation"
  drop_previous "$fork_tag" "$previous"
  echo "$PROG: built $fork_tag (your DonkeyCar on $tag) with $builder in $((SECONDS - start)) s"
}

standin=
pick_builder
mkdir -p "$WORK"
[ -z "$source_spec" ] || stage_fork
[ "$builder" = docker ] || write_containers_conf
echo "$PROG: building $tag (DonkeyCar $generation, Python $python) with $builder" >&2
ensure_base
stage_context
previous=$(image_id "$tag")
start=$SECONDS
build "$tag" "$context" "PYTHON=$python" "DONKEYCAR=$generation"
drop_previous "$tag" "$previous"
echo "$PROG: built $tag with $builder in $((SECONDS - start)) s"
[ -z "$source_spec" ] || build_fork
[ -z "$standin" ] || warn "$standin"
