#!/usr/bin/env bash
# make test-ansible: yamllint and ansible-lint on both roles, then the pigeon_relay role applied
# twice through the chroot connection to the image's root filesystem (build/image-root, left by
# `make image`, whose own build applies pigeon_node twice the same way): the second run must
# change nothing. Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/image/cache/ansible-venv"
root="$repo/build/image-root"
[[ -x "$venv/bin/ansible-lint" ]] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet ansible ansible-lint yamllint; }
cd "$repo/ansible"
"$venv/bin/yamllint" -c .yamllint . ../image/image.yml
"$venv/bin/ansible-lint" --offline site.yml ../image/image.yml ../image/relay-chroot.yml
[[ -d "$root/etc" ]] || { echo "no $root: run make image first"; exit 1; }
chroot "$root" apt-get update -qq
run() {
    ANSIBLE_CONFIG="$repo/ansible/ansible.cfg" "$venv/bin/ansible-playbook" -i "$root," \
        -c community.general.chroot ../image/relay-chroot.yml \
        -e "pigeon_relay_wheelhouse=$repo/build/wheels/aarch64"
}
run | tail -3
run | tee /tmp/pigeon-relay-second.log | tail -3
grep -qE 'changed=0 .*failed=0' /tmp/pigeon-relay-second.log || { echo "pigeon_relay is not idempotent"; exit 1; }
echo "pigeon_relay: applied twice, the second run changed nothing"
