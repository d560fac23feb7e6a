# Upstream sccache, the peer the benchmarks compare against and an unmodified WebDAV client for
# the server's compatibility tests. Built once with `cargo install --locked` and kept in the cache.
SCCACHE_VERSION="0.19.0"
if ! "$CACHET_CI_CACHE/sccache/bin/sccache" --version 2>/dev/null | grep -q "$SCCACHE_VERSION"; then
  echo "setup: building sccache $SCCACHE_VERSION (once; cached in $CACHET_CI_CACHE/sccache)"
  cargo install sccache --version "$SCCACHE_VERSION" --locked --root "$CACHET_CI_CACHE/sccache" --quiet
fi
export CACHET_TEST_SCCACHE="$CACHET_CI_CACHE/sccache/bin/sccache"
