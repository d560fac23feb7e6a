# The C/C++ wrapper tests (crates/cachet/tests/native.rs): CMake for the launcher test, a C++
# compiler, and musl-gcc for the cross build of the native workload (also installed by
# 40-docker.sh, which needs Docker; the musl target itself is added there too).
apt_install cmake g++ musl-tools
rustup target list --installed | grep -x x86_64-unknown-linux-musl >/dev/null \
  || rustup target add x86_64-unknown-linux-musl
