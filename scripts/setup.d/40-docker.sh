# The Docker tests and bench/docker.sh: the static musl target (the server image is FROM scratch
# with a static binary), a Debian rootfs image for client containers (gcc + libc6-dev to link,
# curl for timing loops), and on it the Prometheus image of the compose `metrics` profile. No
# registry is needed: the rootfs comes from debootstrap with this machine's apt sources and is
# imported with `docker import`. The image is also kept as a tarball in $CACHET_CI_CACHE/docker
# so an engine reset costs a `docker load`, not a debootstrap.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  apt_install debootstrap musl-tools
  rustup target list --installed | grep -x x86_64-unknown-linux-musl >/dev/null \
    || rustup target add x86_64-unknown-linux-musl
  cachet_client_base="${CACHET_TEST_CLIENT_BASE:-cachet-ci/debian-client:bookworm}"
  cachet_docker_cache="$CACHET_CI_CACHE/docker"
  mkdir -p "$cachet_docker_cache"
  if ! docker image inspect "$cachet_client_base" >/dev/null 2>&1; then
    if [ -f "$cachet_docker_cache/debian-client.tar" ]; then
      echo "setup: loading $cachet_client_base from $cachet_docker_cache"
      docker load -i "$cachet_docker_cache/debian-client.tar" >/dev/null
    else
      # The suite and mirror of this machine's own apt sources (Debian or Ubuntu; see
      # apt_mirror in setup.sh).
      mirror="$(apt_mirror)"
      suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
      rootfs="$(mktemp -d)"
      echo "setup: debootstrap $suite client rootfs (a few minutes, once)"
      local_sudo=""; [ "$(id -u)" -eq 0 ] || local_sudo="sudo"
      $local_sudo debootstrap --variant=minbase --include=gcc,libc6-dev,curl,ca-certificates \
        "$suite" "$rootfs" "$mirror" >"$cachet_docker_cache/debootstrap.log" 2>&1 \
        || { echo "setup: debootstrap failed, see $cachet_docker_cache/debootstrap.log"; exit 1; }
      $local_sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      $local_sudo tar -C "$rootfs" -c . | docker import - "$cachet_client_base" >/dev/null
      $local_sudo rm -rf "$rootfs"
      docker save -o "$cachet_docker_cache/debian-client.tar" "$cachet_client_base"
    fi
  fi
  export CACHET_TEST_CLIENT_BASE="$cachet_client_base"
  # The compose `metrics` profile's Prometheus image, from the host's Debian package (installed
  # by 30-server.sh) on that base; a no-op when it is up to date (the tests call it too).
  if command -v prometheus >/dev/null 2>&1; then
    docker/prometheus/build.sh >/dev/null
  fi
else
  echo "setup: docker is missing or its daemon is down; the Docker tests will fail"
fi
