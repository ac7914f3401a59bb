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
    torch_binding = sys.modules.get("twinop.torch")
    if torch_binding:  # which of the two torch op libraries the self-check loaded
        print(f"  torch op library     {torch_binding.ABI} ({os.path.basename(torch_binding._library.PATH)})")
    return 1 if failed else 0


def report(args):
    """Measures and writes the report: every axis (`twinop report`) or the runtime alone (`twinop bench`)."""
    from . import report as measured

    builds = () if args.build == "none" else tuple(args.build.split(","))
    axes = tuple(a for a in measured.AXES if a != "build" or builds) if args.command == "report" else ("runtime",)
    unknown = set(builds) - set(measured.ALL_BUILDS)
    if unknown:
        raise SystemExit(f"twinop {args.command}: --build takes none or a comma list of {', '.join(measured.ALL_BUILDS)}; got {', '.join(unknown)}")
    results = measured.run_report(args.out, args.device, args.mode, args.source, axes, builds)
    if results.get("boilerplate", {}).get("available"):
        from .report import render, verdicts

        for op in verdicts.JUDGED_OPS:
            if op in results["boilerplate"]["ops"]:
                print(f"Boilerplate of {op}, lines per feature:")
                print("\n".join(render.feature_table(results["boilerplate"], op)))
    for verdict in results["verdicts"]:
        print(f"{verdict['claim']}: {verdict['verdict']} ({verdict['summary']})")
        if verdict.get("jax"):
            print(f"  JAX: {verdict['jax']}")
    print(f"wrote {os.path.join(args.out, 'REPORT.md')}, results.json and {len([f for f in os.listdir(args.out) if f.endswith('.png')])} plots")
    return 0


def add_report_options(parser, every_axis):
    parser.add_argument("--out", default="twinop-report", help="directory for REPORT.md, results.json and the plots (default: twinop-report)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                        help="where to time and build for; auto: the CPU, plus CUDA when torch sees a GPU")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="a few minutes (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="every dtype, more sizes and repeats")
    mode.add_argument("--tiny", dest="mode", action="store_const", const="tiny", help="the smallest sizes: a smoke test of the command")
    parser.set_defaults(mode="quick", run=report, source=None, build="none")
    if not every_axis:
        return
    from .report import ALL_BUILDS

    parser.add_argument("--source", help="the twinop checkout to count and build (default: the one this install was built from)")
    parser.add_argument("--build", default=",".join(ALL_BUILDS),
                        help="bindings the build axis compiles from clean: a comma list, or none "
                             f"(default: {','.join(ALL_BUILDS)})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="twinop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="what was built, versions, and a self-check of each binding").set_defaults(run=info)
    add_report_options(commands.add_parser("report", help="measure boilerplate, type/device support, build friction "
                                                          "and runtime; write REPORT.md, results.json and plots"), True)
    add_report_options(commands.add_parser("bench", help="measure the runtime only; write the same files with that axis"), False)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
