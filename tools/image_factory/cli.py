"""python -m image_factory {build,list}: build the test and demo images."""

from __future__ import annotations

import argparse
import sys

from image_factory.builder import Factory, ImageBuildError
from image_factory.recipes import DEFAULT_MIRROR, DEFAULT_PREFIX, RECIPES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="image_factory", description=__doc__)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="repository prefix of the image tags")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR, help="Debian mirror for debootstrap")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build images that are missing or out of date")
    build.add_argument("names", nargs="*", metavar="NAME", help=f"images to build (default: all): {', '.join(RECIPES)}")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    commands.add_parser("list", help="list the images the factory knows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        for name, recipe in RECIPES.items():
            print(f"{name:10} {args.prefix}/{recipe.tag:20} {recipe.purpose}")
        return 0
    unknown = [name for name in args.names if name not in RECIPES]
    if unknown:
        print(f"image_factory: unknown image {', '.join(unknown)}; known: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    factory = Factory(prefix=args.prefix, mirror=args.mirror)
    try:
        for name in args.names or list(RECIPES):
            factory.ensure(name, force=args.force)
    except ImageBuildError as error:
        print(f"image_factory: {error}", file=sys.stderr)
        return 1
    return 0
