"""Test harness: a real dockerd, the factory's images, and cleanup of what tests create."""
