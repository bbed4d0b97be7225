# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""Kernel module dependencies, read from the metadata depmod writes for a kernel.

Given the modules RunCVM wants in its initramfs, find every module they need and the order to
load them in, from modules.dep, modules.softdep and modules.builtin.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError

COMPRESSED_SUFFIXES = (".ko.xz", ".ko.gz", ".ko.zst", ".ko")


class ModuleError(BuildError):
    pass


def module_name(path: str) -> str:
    """kernel/fs/fuse/virtiofs.ko.xz -> virtiofs; dashes and underscores are the same to the kernel."""
    base = path.rsplit("/", 1)[-1]
    for suffix in COMPRESSED_SUFFIXES:
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return base.replace("-", "_")


@dataclasses.dataclass
class ModuleIndex:
    paths: dict[str, str]           # module name -> path relative to /lib/modules/<version>
    depends: dict[str, list[str]]   # module name -> names of the modules it needs
    softdeps: dict[str, list[str]]  # module name -> names to load before it, if they exist
    builtin: set[str]

    @classmethod
    def parse(cls, modules_dep: str, modules_softdep: str = "", modules_builtin: str = "") -> ModuleIndex:
        paths, depends = {}, {}
        for line in modules_dep.splitlines():
            if ":" not in line:
                continue
            path, needed = line.split(":", 1)
            name = module_name(path.strip())
            paths[name] = path.strip()
            depends[name] = [module_name(dep) for dep in needed.split()]
        softdeps: dict[str, list[str]] = {}
        for line in modules_softdep.splitlines():
            fields = line.split()
            if len(fields) < 3 or fields[0] != "softdep":
                continue
            pre = []
            mode = None
            for field in fields[2:]:
                if field in ("pre:", "post:"):
                    mode = field
                elif mode == "pre:":
                    pre.append(field.replace("-", "_"))
            softdeps.setdefault(module_name(fields[1]), []).extend(pre)
        builtin = {module_name(line.strip()) for line in modules_builtin.splitlines() if line.strip()}
        return cls(paths, depends, softdeps, builtin)

    def load_order(self, wanted: list[str]) -> list[str]:
        """Paths of `wanted` and everything they need, each after its dependencies. Built-in
        modules need no loading; a soft dependency that does not exist is skipped."""
        order: list[str] = []
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str, required_by: str | None, optional: bool) -> None:
            name = name.replace("-", "_")
            if name in done or name in self.builtin:
                return
            if name not in self.paths:
                if optional:
                    return
                who = f" (needed by {required_by})" if required_by else ""
                raise ModuleError(f"kernel module {name}{who} is neither in modules.dep nor built in")
            if name in visiting:
                raise ModuleError(f"kernel module {name} depends on itself through {sorted(visiting)}")
            visiting.add(name)
            for soft in self.softdeps.get(name, []):
                visit(soft, name, optional=True)
            for dependency in self.depends[name]:
                visit(dependency, name, optional=False)
            visiting.discard(name)
            done.add(name)
            order.append(self.paths[name])

        for name in wanted:
            visit(name, None, optional=False)
        return order
