"""The launcher: the container's first process, which runs the container as a VM."""
