"""RunCVM's runtime: the OCI wrapper on the host, the launcher in the container, the guest init."""
