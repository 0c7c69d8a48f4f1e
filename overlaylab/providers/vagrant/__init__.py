"""The Vagrant substrate: machines from Vagrant's docker provider, on this machine.

- `image`: the offline node image (debootstrap bookworm, sshd, sudo, dockerd, the KV server, user
  vagrant), cached by the hash of its recipe under /var/cache/overlaylab.
- `outer`: the docker engine Vagrant drives, in the lab's own network namespace, with
  the lab network on the spec's subnet and a host link to it.
- `machines`: `vagrant up/status/ssh-config/destroy` through python-vagrant, with
  everything Vagrant keeps inside the lab's state folder; ssh-config feeds fabric.
- `provider`: the `vagrant` provider wiring them together; each machine is then an
  `SSHNode` and the lab runs on it as on any SSH host.
"""
