# The C/C++ wrapper tests (crates/cachet/tests/native.rs and native_tools.rs): CMake for the
# launcher test, a C++ compiler, musl-gcc for the cross build of the native workload (also
# installed by 40-docker.sh, which needs Docker; the musl target itself is added there too),
# clang (with its `-ffile-prefix-map` second checkout), an aarch64 cross gcc, and Meson with
# Ninja for the build-system tests.
apt_install cmake g++ musl-tools clang gcc-aarch64-linux-gnu meson ninja-build
rustup target list --installed | grep -x x86_64-unknown-linux-musl >/dev/null \
  || rustup target add x86_64-unknown-linux-musl
