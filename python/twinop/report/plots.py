"""The report's pictures (matplotlib, Agg): throughput against size per device and dtype (a panel
per framework), call overhead, boilerplate by feature, build time. Each function writes one PNG
and returns its name."""
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .verdicts import run_op  # noqa: E402

# One look per implementation across every plot: twinop's ops solid, the frameworks' own dashed.
STYLE = {
    "twinop-torch": ("tab:red", "-", "o"),
    "twinop-torch-out": ("tab:brown", "-", "o"),
    "twinop-torch-thp": ("tab:pink", "-", "o"),
    "twinop-tf-eager": ("tab:blue", "-", "s"),
    "twinop-tf-function": ("tab:cyan", "-", "D"),
    "twinop-tf-chain": ("tab:green", "-", "D"),
    "twinop-numpy": ("tab:green", "-", "^"),
    "twinop-numpy-out": ("tab:olive", "-", "^"),
    "torch-eager": ("tab:red", "--", "o"),
    "torch-eager-thp": ("tab:pink", "--", "o"),
    "torch-compile": ("tab:orange", "--", "v"),
    "tf-eager": ("tab:blue", "--", "s"),
    "tf-function": ("tab:cyan", "--", "D"),
    "tf-xla": ("tab:purple", "--", "P"),
    "keras-rmsnorm": ("tab:gray", "--", "s"),
    "twinop-jax-eager": ("tab:olive", "-", "X"),
    "twinop-jax-jit": ("tab:pink", "-", "*"),
    "jax-jit": ("tab:pink", "--", "*"),
}


def _save(fig, out_dir, name):
    fig.savefig(os.path.join(out_dir, name), dpi=110, bbox_inches="tight")
    plt.close(fig)
    return name


def throughput(run, dtype, out_dir):
    """GB/s against elements, one row of panels per framework (twinop's binding beside that
    framework's own ops, and a copy of x in it as the ceiling), fwd and fwd+bwd side by side."""
    from .runtime import IMPLS

    frameworks = [f for f in dict.fromkeys(IMPLS.values()) if any(IMPLS.get(r["impl"]) == f for r in run["rows"])]
    fig, axes = plt.subplots(len(frameworks), 2, figsize=(12, 3.4 * len(frameworks)), sharex=True, sharey=True,
                             squeeze=False)
    for row_axes, framework in zip(axes, frameworks):
        for ax, pass_ in zip(row_axes, ("fwd", "fwd+bwd")):
            for impl in (i for i, f in IMPLS.items() if f == framework):
                rows = sorted((r for r in run["rows"] if (r["impl"], r["dtype"], r["pass"]) == (impl, dtype, pass_)),
                              key=lambda r: r["shape"][0] * r["shape"][1])
                if rows:
                    color, dash, marker = STYLE.get(impl, ("gray", "-", "."))
                    ax.plot([r["shape"][0] * r["shape"][1] for r in rows], [r["GBps"] for r in rows],
                            color=color, linestyle=dash, marker=marker, label=impl)
            copy = sorted((c for c in run["copy"] if c["dtype"] == dtype and c["framework"] == framework),
                          key=lambda c: c["shape"][0] * c["shape"][1])
            if copy:
                ax.plot([c["shape"][0] * c["shape"][1] for c in copy], [c["GBps"] for c in copy],
                        color="black", linestyle=":", label=f"copy of x ({framework})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{framework}, {pass_}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        row_axes[0].set_ylabel("GB/s moved")
        row_axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("elements of x (rows x columns)")
    machine = run.get("machine") or "unknown machine"
    fig.suptitle(f"{run_op(run)}, {dtype} on {run['device']} ({machine}): higher is better")
    fig.tight_layout()
    return _save(fig, out_dir, f"runtime_{run['device']}_{run_op(run)}_{dtype}.png")


def overhead(run, out_dir):
    """Microseconds per call at the smallest shape: the cost of the framework's dispatch."""
    rows = sorted(run["overhead"], key=lambda r: (r["pass"], r["median_us"]))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
    labels = [f"{r['impl']} {r['pass']}" for r in rows]
    ax.barh(labels, [r["median_us"] for r in rows], color=[STYLE.get(r["impl"], ("gray",))[0] for r in rows])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("microseconds per call (lower is better)")
    shape = "x".join(map(str, rows[0]["shape"])) if rows else ""
    ax.set_title(f"{run_op(run)}: call overhead on {run['device']}, {shape} {rows[0]['dtype'] if rows else ''}")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out_dir, f"overhead_{run['device']}_{run_op(run)}.png")


def boilerplate(data, op, out_dir):
    """Lines per binding of one op, stacked by feature, next to the shared core."""
    from .boilerplate import FEATURES

    table = data["ops"][op]
    bindings = [b for b in ("numpy", "torch", "torch-stable", "tensorflow", "jax") if b in table]
    colors = plt.get_cmap("tab20").colors
    fig, ax = plt.subplots(figsize=(10, 5.5))
    bottom = [0] * (len(bindings) + 1)
    for i, (key, title) in enumerate(FEATURES.items()):
        heights = [table[b][key].get("lines", 0) for b in bindings] + [0]
        ax.bar(bindings + ["core"], heights, bottom=bottom, label=title, color=colors[i % len(colors)])
        bottom = [b + h for b, h in zip(bottom, heights)]
    for i, (part, lines) in enumerate(data["core"].items()):
        ax.bar(["core"], [lines], bottom=[bottom[-1]], label=part, color=("0.45", "0.7")[i % 2])
        bottom[-1] += lines
    for x, total in enumerate(bottom):
        ax.annotate(str(total), (x, total), ha="center", va="bottom")
    ax.set_ylabel("non-blank, non-comment lines")
    ax.set_title(f"Binding code of {op} by feature, and the shared core it wraps")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, f"boilerplate_{op}.png")


def build_times(data, out_dir):
    """CPU seconds to configure and build each binding from clean, by stage."""
    built = {b: r for b, r in data["bindings"].items() if r["ok"]}
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(built) + 1.5))
    left = [0.0] * len(built)
    for stage, color in (("configure", "tab:gray"), ("core", "tab:olive"), ("build", "tab:brown")):
        widths = [r[f"{stage}_cpu_s"] for r in built.values()]
        ax.barh(list(built), widths, left=left, color=color, label=stage if stage != "core" else "shared core")
        left = [a + b for a, b in zip(left, widths)]
    for y, total in enumerate(left):
        ax.annotate(f"{total:.0f} s", (total, y), va="center", xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel("CPU seconds from clean (lower is better)")
    ax.set_title("Build cost of each binding alone")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3 - 0.6 / (len(built) + 1)), ncol=3)
    ax.set_xlim(0, max(left, default=1) * 1.15)
    fig.tight_layout()
    return _save(fig, out_dir, "build.png")


def all_plots(results, out_dir):
    """{section: [png names]} for every axis present in results."""
    made = {"runtime": [], "boilerplate": [], "build": []}
    for run in results.get("runtime", {}).get("runs", []):
        for dtype in sorted({r["dtype"] for r in run["rows"]}):
            made["runtime"].append(throughput(run, dtype, out_dir))
        if run["overhead"]:
            made["runtime"].append(overhead(run, out_dir))
    if results.get("boilerplate", {}).get("available"):
        made["boilerplate"] += [boilerplate(results["boilerplate"], op, out_dir) for op in results["boilerplate"]["ops"]]
    if any(r["ok"] for r in results.get("build", {}).get("bindings", {}).values()):
        made["build"].append(build_times(results["build"], out_dir))
    return made
