# The server's real-client tests and benchmark: ccache (a remote-storage HTTP client),
# Prometheus (scrapes /metrics), nginx-light (WebDAV baseline for bench/server.sh), and gcc for
# the ccache test's C files. sccache comes from 10-sccache.sh.
apt_install ccache prometheus nginx-light gcc libc6-dev
export CACHET_TEST_CCACHE="${CACHET_TEST_CCACHE:-$(command -v ccache)}"
export CACHET_TEST_PROMETHEUS="${CACHET_TEST_PROMETHEUS:-$(command -v prometheus)}"
