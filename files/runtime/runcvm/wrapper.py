"""runcvm-runtime: the OCI runtime dockerd calls. It reads runc's command line without parsing
all of it, has `create` and `update` rewritten (runcvm.rewrite) and `exec` (runcvm.exec_spec),
and then becomes the real runc with the command line unchanged. Every other subcommand (`start`,
`state`, `kill`, `delete`: three of them on the path of each `docker run`) goes straight to runc,
with nothing imported that it does not need: the rewrites' imports cost about 40 ms a call."""

from __future__ import annotations

import os
import sys
import typing as t

from runcvm.runc_cli import WrapperError, global_options, subcommand

RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", "/sbin/runc")
RUNC_OVERRIDE = "RUNCVM_RUNC"
# The subcommands whose input RunCVM changes before runc sees it.
REWRITTEN = ("create", "exec", "update")


def find_runc(environ: t.Mapping[str, str] | None = None) -> str:
    override = (os.environ if environ is None else environ).get(RUNC_OVERRIDE)
    if override:
        if not os.access(override, os.X_OK):
            raise WrapperError(f"{RUNC_OVERRIDE}={override} is not an executable runc")
        return override
    for candidate in RUNC_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    import shutil  # pylint: disable=import-outside-toplevel  # here only: it brings re, 6 ms a call
    found = shutil.which("runc")
    if found:
        return found
    raise WrapperError(f"runc is not installed (looked in {', '.join(RUNC_CANDIDATES)}); install runc or "
                       f"set {RUNC_OVERRIDE} in dockerd's environment")


def log_error(options: dict[str, str], message: str) -> None:
    """Report as runc does: containerd shows the user the last error line of --log."""
    print(f"runcvm: {message}", file=sys.stderr)
    path = options.get("--log")
    if not path:
        return
    if options.get("--log-format") == "json":
        # Imported here only, as the rewrites are: json brings re, 5 ms of every runtime call.
        import datetime  # pylint: disable=import-outside-toplevel
        import json  # pylint: disable=import-outside-toplevel
        line = json.dumps({"level": "error", "msg": f"runcvm: {message}",
                           "time": datetime.datetime.now(datetime.timezone.utc).isoformat()})
    else:
        line = f"runcvm: error: {message}"
    with open(path, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def main(argv: t.Sequence[str] | None = None, payload_dir: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = global_options(argv)[0]
    try:
        runc = find_runc()
        command = subcommand(argv)
        if command == "exec":
            from runcvm import exec_spec  # pylint: disable=import-outside-toplevel  # see the module's docstring
            exec_spec.before_runc(argv)
        elif command in REWRITTEN:
            from runcvm import rewrite  # pylint: disable=import-outside-toplevel  # see the module's docstring
            status = rewrite.before_runc(command, argv, runc, payload_dir)
            if status is not None:
                return status
    except WrapperError as error:
        log_error(options, str(error))
        return 1
    os.execv(runc, [runc, *argv])
    return 1
