"""Keep pytest out of the VM cache: it holds a whole root filesystem (with /proc mounted while
build-rootfs.sh runs), which is no test code."""

collect_ignore = ["cache"]
