"""Tables for stdout (Markdown, ready for the README) and the JSON document of a run."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.runner import Measurement, TargetRun
from bench.scenarios import BY_NAME

NAMES = {
    "sqlite": "provisio · SQLite",
    "postgresql": "provisio · PostgreSQL",
    "peer": "reference (scim2-server)",
}


NOISY = 0.25  # other processes' share of a core above which a table says its figures are disturbed


def _median_run(measurements: list[Measurement], scenario: str) -> tuple[dict[str, Any], list[float]] | None:
    """The repeat with the median req/s, and all repeats' req/s."""
    runs = [m.stats for m in measurements if m.scenario == scenario]
    if not runs:
        return None
    ordered = sorted(runs, key=lambda s: s["rps"])
    return ordered[(len(ordered) - 1) // 2], [s["rps"] for s in runs]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---" if i == 0 else "---:" for i in range(len(header))]
    return "\n".join([_row(header), _row(align), *(_row(r) for r in rows)])


def _cpu(stats: dict[str, Any]) -> str:
    return (
        f"{stats['server_cpu']:.0%} / {stats.get('database_cpu', 0):.0%} / {stats['generator_cpu']:.0%}"
        f" / {stats['other_cpu']:.0%}"
    )


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def target_table(run: TargetRun) -> str:
    repeats = max((m.repeat for m in run.measurements), default=1)
    header = ["scenario", "req/s", "p50 ms", "p99 ms", "requests", "errors", "CPU server/db/gen/other"]
    if repeats > 1:
        header.append(f"req/s over {repeats} runs (min-max, spread)")
    rows = []
    for name in BY_NAME:
        picked = _median_run(run.measurements, name)
        if picked is None:
            if name in run.skipped:
                rows.append([name, "n/a", "", "", "", "", ""] + ([""] if repeats > 1 else []))
            continue
        s, all_rps = picked
        row = [
            name,
            _fmt(s["rps"]),
            _fmt(s["p50_ms"], 2),
            _fmt(s["p99_ms"], 2),
            str(s["requests"]),
            str(s["errors"]),
            _cpu(s),
        ]
        if repeats > 1:
            spread = (
                (max(all_rps) - min(all_rps)) / statistics.median(all_rps)
                if statistics.median(all_rps)
                else 0
            )
            row.append(f"{_fmt(min(all_rps))}-{_fmt(max(all_rps))} ({spread:.0%})")
        rows.append(row)
    title = (
        f"**{NAMES.get(run.label, run.label)}**, {run.users:,} users "
        f"(seeded by {run.seed_method} in {run.seed_seconds:.1f} s, {run.users / run.seed_seconds:,.0f}/s)"
    )
    notes = [f"- {name}: {why}" for name, why in run.skipped.items()]
    notes += [neighbour_note(m.stats) for m in run.measurements if "neighbour_alone" in m.stats]
    noisiest = max((m.stats["other_cpu"] for m in run.measurements), default=0.0)
    if noisiest > NOISY:
        notes.append(
            f"- other processes took up to {noisiest:.0%} of a core during these runs: figures are disturbed"
        )
    return "\n".join([title, "", _table(header, rows), *(["", *notes] if notes else [])])


def neighbour_note(s: dict[str, Any]) -> str:
    """The noisy-neighbour row's own figures: B's p99 with A flooding against B alone."""
    alone, flooded = s["neighbour_alone"], s["neighbour_flooded"]
    return (
        f"- noisy_neighbour: B at {alone['rate']:g} req/s, p99 {alone['p99_ms']:.2f} ms alone and "
        f"{flooded['p99_ms']:.2f} ms while A floods (**{s['p99_ratio']}x**; p50 {alone['p50_ms']:.2f} / "
        f"{flooded['p50_ms']:.2f} ms); the row above is A's flood, {s['flood_refused']} of its requests "
        f"refused (429); B errors {alone['errors'] + flooded['errors']}"
    )


def ratio_rows(runs: list[TargetRun]) -> list[dict[str, Any]]:
    """provisio req/s over the reference server's, per scenario and backend, against the issue's targets."""
    peer = next((r for r in runs if r.label == "peer"), None)
    if peer is None:
        return []
    out = []
    for run in runs:
        if run.label == "peer":
            continue
        for name, scenario in BY_NAME.items():
            mine, theirs = _median_run(run.measurements, name), _median_run(peer.measurements, name)
            if mine is None or theirs is None or theirs[0]["rps"] == 0 or name == "trivial":
                continue
            ratio = mine[0]["rps"] / theirs[0]["rps"]
            target = scenario.peer_ratio_target
            out.append(
                {
                    "backend": run.label,
                    "scenario": name,
                    "provisio_rps": mine[0]["rps"],
                    "peer_rps": theirs[0]["rps"],
                    "ratio": round(ratio, 2),
                    "p50_ratio": round(theirs[0]["p50_ms"] / mine[0]["p50_ms"], 2)
                    if mine[0]["p50_ms"]
                    else None,
                    "target": target,
                    "met": None if target is None else ratio >= target,
                }
            )
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    header = ["scenario", "backend", "provisio req/s", "reference req/s", "ratio", "target", "met"]
    body = [
        [
            r["scenario"],
            r["backend"],
            _fmt(r["provisio_rps"]),
            _fmt(r["peer_rps"]),
            f"{r['ratio']:,.2f}x",
            "" if r["target"] is None else f"≥ {r['target']:g}x",
            "" if r["met"] is None else ("yes" if r["met"] else "**no**"),
        ]
        for r in sorted(rows, key=lambda r: (list(BY_NAME).index(r["scenario"]), r["backend"]))
    ]
    return (
        "**provisio / reference server** (req/s ratio, same scenario, same machine, same run)\n\n"
        + _table(header, body)
    )


def scale_rows(runs: list[TargetRun]) -> list[dict[str, Any]]:
    """For each backend and scenario: the smallest N against the largest (cost = p50 and 1/req/s)."""
    out = []
    for label in dict.fromkeys(r.label for r in runs):
        sized = sorted((r for r in runs if r.label == label), key=lambda r: r.users)
        if len(sized) < 2:
            continue
        small, large = sized[0], sized[-1]
        for name in BY_NAME:
            a, b = _median_run(small.measurements, name), _median_run(large.measurements, name)
            if a is None or b is None:
                continue
            out.append(
                {
                    "backend": label,
                    "scenario": name,
                    "small_users": small.users,
                    "large_users": large.users,
                    "small_rps": a[0]["rps"],
                    "large_rps": b[0]["rps"],
                    "small_p50_ms": a[0]["p50_ms"],
                    "large_p50_ms": b[0]["p50_ms"],
                    "small_p99_ms": a[0]["p99_ms"],
                    "large_p99_ms": b[0]["p99_ms"],
                    "cost_ratio": round(a[0]["rps"] / b[0]["rps"], 2) if b[0]["rps"] else None,
                    "p50_ratio": round(b[0]["p50_ms"] / a[0]["p50_ms"], 2) if a[0]["p50_ms"] else None,
                }
            )
    return out


def scale_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    small, large = rows[0]["small_users"], rows[0]["large_users"]
    header = [
        "scenario",
        "backend",
        f"req/s @ {small:,}",
        f"p50/p99 ms @ {small:,}",
        f"req/s @ {large:,}",
        f"p50/p99 ms @ {large:,}",
        "cost ratio (req/s small / large)",
    ]
    body = [
        [
            r["scenario"],
            r["backend"],
            _fmt(r["small_rps"]),
            f"{r['small_p50_ms']:.2f} / {r['small_p99_ms']:.2f}",
            _fmt(r["large_rps"]),
            f"{r['large_p50_ms']:.2f} / {r['large_p99_ms']:.2f}",
            f"{r['cost_ratio']:.2f}x",
        ]
        for r in rows
    ]
    return f"**Cost at {large:,} users against {small:,}** (1.00x = flat)\n\n" + _table(header, body)


def ceiling_line(m: Measurement, concurrency: int) -> str:
    s = m.stats
    return (
        f"Load generator ceiling (aiohttp, {concurrency} keep-alive clients, against a trivial HTTP server "
        f"on the server's core): {_fmt(s['rps'])} req/s, p50 {s['p50_ms']:.2f} ms; CPU (share of a core) "
        f"trivial server {s['server_cpu']:.0%}, generator {s['generator_cpu']:.0%}, other processes "
        f"{s['other_cpu']:.0%}."
    )


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=False,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent,
        check=False,
        timeout=5,
    )
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_line(info: dict[str, Any], pinning: str) -> str:
    return (
        f"Machine: {info['cpu'] or 'unknown CPU'}, {info['cpus']} CPUs, {info['memory_gib']} GiB, "
        f"Linux {info['kernel']}, Python {info['python']}; provisio {info['commit'] or '?'}; {pinning}."
    )
