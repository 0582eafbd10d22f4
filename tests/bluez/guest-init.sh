#!/bin/bash
# PID 1 of the BlueZ test VM: mount the basics, share the repo over 9p, then run the test.
# QEMU exits when this script ends (panic=-1 with -no-reboot).
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
modprobe 9pnet_virtio && modprobe 9p
mkdir -p /src /out
mount -t 9p -o trans=virtio,version=9p2000.L,ro src /src
mount -t 9p -o trans=virtio,version=9p2000.L out /out
script=$(sed -n 's/.*pigeon.test=\([^ ]*\).*/\1/p' /proc/cmdline)
/bin/bash "/src/$script" > /out/guest.log 2>&1
echo $? > /out/exit-status
sync
echo o > /proc/sysrq-trigger
