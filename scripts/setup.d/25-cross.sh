# The wrapper's cross-build test (`restored::cross_builds_are_restored_in_another_checkout`)
# builds for the static musl target, whether or not Docker is there (40-docker.sh needs it too).
rustup target list --installed | grep -x x86_64-unknown-linux-musl >/dev/null \
  || rustup target add x86_64-unknown-linux-musl
