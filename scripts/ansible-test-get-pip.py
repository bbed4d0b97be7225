"""Stand-in for the pip bootstrap script that ansible-test downloads into its cache before it
creates a sanity-test virtual environment; that download host is out of reach here.

ansible-test runs it inside the new environment with pip-install arguments (pip==X, options).
It installs pip from Python's own ensurepip wheel, then runs `pip install` with those arguments.
"""

import subprocess
import sys

# Options of the original bootstrap script that `pip install` does not know.
BOOTSTRAP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
arguments = [argument for argument in sys.argv[1:] if argument not in BOOTSTRAP_ONLY_OPTIONS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments]))
