"""Builds the container images RunCVM's tests and demo use, with no registry at all.

The base image is a Debian minbase tree made by debootstrap and imported into Docker; every
other image is a `docker build` FROM it. Each image carries the hash of its recipe as a label
and is rebuilt only when that hash changes.
"""
