"""The guest side: RunCVM's init in the VM, which sets the VM up as Docker described the
container and runs the workload for the launcher."""


def log(message: str) -> None:
    """A line on the VM's console: what RunCVM's init and its agent have to say."""
    with open("/dev/console", "w", encoding="utf-8", errors="replace") as console:
        console.write(f"runcvm-init: {message}\n")
