"""`invoke logs`: one archive of a lab's evidence, gathered through the provider's node
handles (so local, SSH and Vagrant labs alike), with a manifest of what was collected
and what could not be, and no secrets (private keys, swarm join tokens) in it."""
