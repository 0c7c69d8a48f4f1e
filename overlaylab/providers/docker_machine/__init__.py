"""docker-machine, as the 2015 guides ran it: the commands `invoke render` writes to
machines.sh. The provider checks, before anything starts, whether this machine can run
them, and says what is missing and where the script is."""

from overlaylab.providers.docker_machine.provider import DockerMachineProvider

__all__ = ["DockerMachineProvider"]
