# The wrapper's tests: gdb (debugger view of restored crates) and mount (small tmpfs file
# systems for the full- and read-only-cache tests).
apt_install gdb mount
