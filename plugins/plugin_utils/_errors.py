# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""The builders' errors share one base, so callers report them all the same way."""


class BuildError(Exception):
    """A build cannot go on; the message says why and, where there is one, what to do."""
