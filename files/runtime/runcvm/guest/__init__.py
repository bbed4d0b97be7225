"""The guest side: RunCVM's init in the VM, which sets the VM up as Docker described the
container and runs the workload for the launcher."""
