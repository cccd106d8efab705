# shellcheck shell=bash
# Part 5 of scripts/provision-docker.sh (sourced by it, which defines say, run, fail, elapsed,
# can_provision, codename and build_debian_base): local/systemd-init:<codename>, a Debian image
# whose init is a real systemd, for the test that runs the generated unit under systemd as PID 1
# (tests/production/test_systemd.py; ../shared/spec/FACTS.md section 5 says how it starts here).
# Made offline like the simulator's base (debootstrap from apt's mirror; CI has no registry), with
# systemd, systemd-sysv, dbus and procps; its CMD remounts the cgroup hierarchies read-write (a
# cgroup v1 / hybrid host mounts them read-only into a container) and execs /sbin/init. Python, the
# project and the Docker CLI are bind-mounted by the test: the units inside drive the host's Docker.
# Built once per machine (an existing image is kept); skipped, with one line, where debootstrap
# cannot run (not Debian/Ubuntu as root): the test then skips, or fails under CI.

provision_systemd_image() {
    local suite image
    suite=$(codename)
    image="local/systemd-init:${suite:-none}"
    if docker image inspect "$image" >/dev/null 2>&1; then
        say "systemd image: $image (already built)"
    elif can_provision && [ -n "$suite" ]; then
        build_debian_base "$image" "$suite" systemd,systemd-sysv,dbus,procps '["/usr/local/sbin/zt-init"]' \
            prepare_systemd_root
        say "ready after $(elapsed): $image"
    else
        say "systemd image: not built (needs Debian/Ubuntu as root for debootstrap); its test will skip"
    fi
}

# prepare_systemd_root DIR: the init wrapper, and no units that need hardware or a console.
prepare_systemd_root() {
    local root=$1 unit
    cat >"$root/usr/local/sbin/zt-init" <<'INIT'
#!/bin/sh
# systemd as PID 1 in a container: the cgroup hierarchies writable (FACTS.md section 5), then init.
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do mount -o remount,rw "$d" 2>/dev/null; done
exec /sbin/init
INIT
    chmod 0755 "$root/usr/local/sbin/zt-init"
    for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-udev-trigger.service \
        systemd-modules-load.service systemd-remount-fs.service; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
}
