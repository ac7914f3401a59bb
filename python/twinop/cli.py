"""The `twinop` command."""
import argparse
import os
import platform
import sys


def info(_args):
    """Prints what was built, against which versions, and a self-check of each binding."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from . import ACTIVATIONS, __version__, _loader, selfcheck

    print(f"twinop {__version__} on Python {platform.python_version()} ({platform.machine()})")
    for key, value in _loader.built_with().items():
        print(f"  built with {key:<11}{value if value not in (None, False) else '-'}")
    print(f"  activations          {', '.join(ACTIVATIONS)}")
    failed = False
    for binding in selfcheck.BINDINGS:
        verdict = selfcheck.check(binding)
        failed |= verdict.startswith("WRONG")
        print(f"  self-check {binding:<10}{verdict}")
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="twinop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="what was built, versions, and a self-check of each binding").set_defaults(run=info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
