#!/usr/bin/env python3
"""Plots the benchmark results: bench_plot.py RESULTS_JSON OUT_DIR.

Writes overhead.png (pool overhead, ns/cycle), select1.png (end-to-end q/s and client CPU
per query, pool of 8, per transport) and fairness.png (acquire-wait percentiles).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows_of(data, scenario):
    return [r for r in data["rows"] if r["scenario"] == scenario and r["metrics"]]


def groups_of(rows):
    out = []
    for r in rows:
        if r["group"] not in out:
            out.append(r["group"])
    return out


def overhead(data, out):
    rows = rows_of(data, "overhead")
    if not rows:
        return
    groups = groups_of(rows)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for i, name in enumerate(["pgpool", "r2d2"]):
        ys = [next((r["metrics"]["ns_per_cycle"] for r in rows
                    if r["group"] == g and r["contender"] == name), 0) for g in groups]
        ax.bar([x + (i - 0.5) * width for x in range(len(groups))], ys, width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.split(",")[0] for g in groups])
    ax.set_ylabel("ns per acquire + release (lower is better)")
    ax.set_title("Pool overhead, no-op manager, pool of 8")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{out}/overhead.png", dpi=110)
    plt.close(fig)


def select1(data, out):
    rows = [r for r in rows_of(data, "select1")
            if "(pool" not in r["contender"] or "(pool 8)" in r["contender"]]
    if not rows:
        return
    transports = []
    for r in rows:
        t = r["group"].split(",")[0]
        if t not in transports:
            transports.append(t)
    contenders = []
    for r in rows:
        if r["contender"] not in contenders and r["contender"] != "connect per query":
            contenders.append(r["contender"])
    fig, axes = plt.subplots(2, len(transports), figsize=(6.5 * len(transports), 8),
                             squeeze=False)
    for col, t in enumerate(transports):
        groups = [g for g in groups_of(rows) if g.startswith(t + ",")]
        threads = [int(g.split(",")[1].split()[0]) for g in groups]
        for c in contenders:
            for row, key, label in [(0, "qps", "queries/s"),
                                    (1, "cpu_us_per_query", "client CPU us/query")]:
                ys = []
                for g in groups:
                    m = next((r["metrics"].get(key) for r in rows
                              if r["group"] == g and r["contender"] == c), None)
                    ys.append(m)
                xs = [x for x, y in zip(threads, ys) if y is not None]
                ys = [y for y in ys if y is not None]
                if ys:
                    axes[row][col].plot(xs, ys, marker="o", label=c)
                axes[row][col].set_xscale("log", base=2)
                axes[row][col].set_xlabel("client threads")
                axes[row][col].set_ylabel(label)
        axes[0][col].set_title(f"SELECT over {t} (pooled: pool of 8)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}/select1.png", dpi=110)
    plt.close(fig)


def fairness(data, out):
    rows = rows_of(data, "fairness")
    if not rows:
        return
    keys = [("wait_p50_us", "p50"), ("wait_p99_us", "p99"), ("wait_max_us", "max"),
            ("ideal_wait_us", "ideal FIFO")]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for i, r in enumerate(rows):
        ys = [r["metrics"][k] for k, _ in keys]
        ax.bar([x + (i - 0.5) * width for x in range(len(keys))], ys, width,
               label=r["contender"])
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([label for _, label in keys])
    ax.set_yscale("log")
    ax.set_ylabel("acquire wait, us (log)")
    ax.set_title(rows[0]["group"])
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{out}/fairness.png", dpi=110)
    plt.close(fig)


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    out = sys.argv[2]
    overhead(data, out)
    select1(data, out)
    fairness(data, out)


if __name__ == "__main__":
    main()
