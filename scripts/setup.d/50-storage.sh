# The storage-tier tests and benchmark: redis-server and redis-cli from Debian (one node and a
# 3-node Redis Cluster on loopback ports, started by the tests), and moto in server mode, an
# S3-compatible server, from PyPI, installed once into a virtualenv in $CACHET_CI_CACHE/moto.
apt_install redis-server redis-tools
export CACHET_TEST_REDIS_SERVER="${CACHET_TEST_REDIS_SERVER:-$(command -v redis-server)}"
export CACHET_TEST_REDIS_CLI="${CACHET_TEST_REDIS_CLI:-$(command -v redis-cli)}"
MOTO_VERSION="5.2.1"
moto_dir="$CACHET_CI_CACHE/moto"
if ! "$moto_dir/bin/python" -c "import flask, moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "setup: installing moto[server] $MOTO_VERSION (once; cached in $moto_dir)"
  rm -rf "$moto_dir"
  if ! python3 -m venv "$moto_dir" 2>/dev/null; then
    apt_install python3 python3-venv
    python3 -m venv "$moto_dir"
  fi
  "$moto_dir/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export CACHET_TEST_MOTO="$moto_dir/bin/moto_server"
