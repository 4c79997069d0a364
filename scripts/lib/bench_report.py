#!/usr/bin/env python3
"""scripts/bench's report: reads the run's results, writes latest.json and latest.md, prints
the Markdown, and exits non-zero when a scenario saw a non-2xx response or a socket error.

    bench_report.py RESULTS_DIR LOGS_DIR OUT_DIR

RESULTS_DIR holds `order` (scenario names, in run order), NAME.meta.json (what scripts/bench
knows: label, server, data set, connections, peak RSS), NAME.run.json and NAME.warmup.json
(bench/wrk/scenario.lua's results), argon2.before.json and argon2.after.json (herald-floor argon2
around the login flood), export.json (scripts/lib/bench_export.py) and run.json (run facts).
Missed performance targets are reported as MISS; they never fail the run.
"""

import json
import re
import sys
from datetime import datetime
from pathlib import Path

MIB = 1024
RSS_LIMIT_MIB = 50
EXPORT_RSS_LIMIT_MIB = 64  # behaviour.md: an export's memory stays bounded whatever its size
LIST_SAME_FACTOR = 1.5  # "about the same": p50 at the large data set ≤ 1.5 × the small one's


def load(path):
    with open(path) as f:
        return json.load(f)


def target_of(name, run):
    """(floor name, kind, threshold) for a scenario; kind is what the ratio compares."""
    small, large = run["datasets"]["small"], run["datasets"]["large"]
    fixed = {
        "health": ("floor-framework", "rps", None),
        "get-cached": ("floor-framework", "rps", 0.50),
        "get-uncached": ("floor-db", "rps", 0.80),
        "post": ("floor-db", "rps", 0.20),
        "login": ("argon2-ceiling", "rps", 0.90),
        "health-during-login": (None, "p99", 10.0),
        # Scale-out: ratio to one instance reached directly, measured in the same phase.
        "scale-1-nginx": ("scale-1", "rps", None),
        "scale-2-nginx": ("scale-1", "rps", None),
    }
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"(list-(?:first|deep|tag)(?:-db)?)@(.+)", name)
    if m and large and m.group(2) == large:
        return (f"{m.group(1)}@{small}", "p50-same", LIST_SAME_FACTOR)
    return (None, None, None)


def fmt_num(x, digits=0):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def main():
    res, logs, out = (Path(p) for p in sys.argv[1:4])
    run = load(res / "run.json")
    # Measured before and after the login flood; the ceiling uses the mean of both.
    argon2 = load(res / "argon2.before.json")
    after = load(res / "argon2.after.json")
    argon2["before_ms"], argon2["after_ms"] = argon2["mean_ms"], after["mean_ms"]
    argon2["mean_ms"] = (argon2["mean_ms"] + after["mean_ms"]) / 2
    ceiling = run["cores"] * 1000.0 / argon2["mean_ms"]
    argon2["ceiling_rps"] = ceiling

    rows = []
    for name in (res / "order").read_text().split():
        meta = load(res / f"{name}.meta.json")
        r = load(res / f"{name}.run.json")
        warm_path = res / f"{name}.warmup.json"
        warm = load(warm_path) if warm_path.exists() else None
        non2xx = r["non2xx"] + (warm["non2xx"] if warm else 0)
        sock = sum(v for k, v in r["errors"].items() if k != "status_ge_400")
        if warm:
            sock += sum(v for k, v in warm["errors"].items() if k != "status_ge_400")
        rows.append(
            {
                "name": name,
                "label": meta["label"],
                "server": meta["server"],
                "dataset": meta["dataset"],
                "connections": meta["connections"],
                "duration_s": r["duration_s"],
                "requests": r["requests"],
                "rps": r["rps"],
                "mean_ms": r["mean_ms"],
                "p50_ms": r["p50_ms"],
                "p90_ms": r["p90_ms"],
                "p99_ms": r["p99_ms"],
                "max_ms": r["max_ms"],
                "peak_rss_mib": (meta["rss_kib"] / MIB) if meta["rss_kib"] is not None else None,
                "non2xx": non2xx,
                "last_non2xx_status": r["last_non2xx_status"] or (warm or {}).get("last_non2xx_status", 0),
                "socket_errors": sock,
                "status_exact": bool(r["strict"]),
                "warmup": warm,
                "window_ms": [meta.get("warm_ms", meta["start_ms"]), meta["start_ms"], meta["end_ms"]],
            }
        )
    by_name = {row["name"]: row for row in rows}

    failures, misses = [], []
    for row in rows:
        floor_name, kind, threshold = target_of(row["name"], run)
        floor_value, ratio, verdicts, target_text = None, None, [], []
        if floor_name == "argon2-ceiling":
            floor_value = ceiling
        elif floor_name in by_name:
            floor_row = by_name[floor_name]
            floor_value = floor_row["p50_ms"] if kind == "p50-same" else floor_row["rps"]
        if kind == "rps" and floor_value:
            ratio = row["rps"] / floor_value
            if threshold is not None:
                target_text.append(f"≥ {threshold:.0%}")
                verdicts.append((ratio >= threshold, "ratio"))
        elif kind == "p50-same" and floor_value:
            ratio = row["p50_ms"] / floor_value
            target_text.append(f"p50 ≤ {threshold}× @{run['datasets']['small']}")
            verdicts.append((ratio <= threshold, "p50"))
        elif kind == "p99":
            target_text.append(f"p99 < {threshold:g} ms")
            verdicts.append((row["p99_ms"] < threshold, "p99"))
        if row["server"] == "herald" and row["peak_rss_mib"] is not None:
            target_text.append(f"RSS < {RSS_LIMIT_MIB} MiB")
            verdicts.append((row["peak_rss_mib"] < RSS_LIMIT_MIB, "RSS"))

        if row["requests"] == 0 or row["non2xx"] or row["socket_errors"]:
            verdict = "FAIL"
            failures.append(
                f"{row['name']}: {row['requests']} requests, {row['non2xx']} non-2xx "
                f"(last status {row['last_non2xx_status']}), {row['socket_errors']} socket errors"
            )
        elif not verdicts:
            verdict = "—"
        elif all(ok for ok, _ in verdicts):
            verdict = "ok"
        else:
            missed = [what for ok, what in verdicts if not ok]
            verdict = f"MISS ({', '.join(missed)})"
            misses.append(f"{row['name']} ({', '.join(missed)})")
        row.update(
            floor=floor_name,
            floor_value=floor_value,
            floor_kind=kind,
            ratio=ratio,
            target=", ".join(target_text) or None,
            verdict=verdict,
        )

    # Herald's own logs: errors and warnings it wrote during the run.
    # (scripts/bench keeps only their lines above INFO, and the total line count.)
    instances = {}
    if (res / "instances").exists():
        for line in (res / "instances").read_text().splitlines():
            name, started, ready = line.split()
            instances[name] = (int(started), int(ready))

    def scenario_at(instance, timestamp):
        try:
            ms = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000
        except (AttributeError, ValueError):
            return "?"
        started, ready = instances.get(instance, (0, 0))
        if started <= ms <= ready + 50:
            return "start-up (scripts/bench's readiness polls)"
        for row in rows:
            warm, start, end = row["window_ms"]
            if warm <= ms < start:
                return f"{row['name']} warm-up"
            if start <= ms <= end:
                return row["name"]
        return "between scenarios"

    herald_logs = {}
    for log in sorted(logs.glob("herald-*.log")):
        errors = warnings = other = 0
        samples = []
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                other += 1
                if len(samples) < 3:
                    samples.append(line[:200])
                continue
            level = str(entry.get("level", "")).upper()
            if level == "ERROR":
                errors += 1
            elif level == "WARN":
                warnings += 1
            else:
                continue
            message = entry.get("fields", {}).get("message") or entry.get("message") or line
            status = entry.get("http.response.status_code")
            if status is not None:
                message = f"{message} {entry.get('http.request.method')} {entry.get('url.path')} → {status}"
            sample = f"{level} during {scenario_at(log.stem, entry.get('timestamp'))}: {str(message)[:160]}"
            if len(samples) < 3 and sample not in samples:
                samples.append(sample)
        lines_file = log.with_name(log.name + ".lines")
        herald_logs[log.stem] = {
            "lines": int(lines_file.read_text()) if lines_file.exists() else None,
            "errors": errors,
            "warnings": warnings,
            "non_json_lines": other,
            "samples": samples,
        }

    export = load(res / "export.json") if (res / "export.json").exists() else None
    if export:
        if not export["ok"]:
            failures.append(f"export: status {export['status']}, {export.get('posts_in_file')} lines "
                            f"for {export['posts_expected']} posts")
        elif export["peak_rss_mib"] is not None and max(
            export["peak_rss_mib"], export.get("peak_rss_with_download_mib") or 0
        ) >= EXPORT_RSS_LIMIT_MIB:
            misses.append("export (RSS)")

    report = {
        "run": run,
        "export": export,
        "argon2": argon2,
        "scenarios": rows,
        "herald_logs": herald_logs,
        "failures": failures,
        "misses": misses,
    }
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")

    md = []
    mode = "quick smoke run (figures are not measurements)" if run["quick"] else "full run"
    md.append(f"# Herald benchmark — {mode}\n")
    md.append(
        f"{run['started_at']}, commit {run['commit']}, {run['cores']} cores ({run['cpu']}), "
        f"{run['load_generator']}. {run['duration_s']} s per scenario "
        + (f"after a {run['warmup_s']} s warm-up, " if run["warmup_s"] else "(no warm-up), ")
        + f"{run['connections']} connections (login flood {run['login_connections']}, "
        f"its /health/live probe {run['probe_connections']} paced at {run['probe_delay_ms']} ms), "
        f"database pool {run['pool_size']}. wrk runs on the same cores as the servers, PostgreSQL "
        f"and Redis, so every figure includes the load generator's cost. Load average before / "
        f"after the load phase: {run['loadavg']['before']} / {run['loadavg']['after']} (other work "
        f"on the machine skews the figures).\n"
    )
    seeds = "; ".join(
        f"{s['database']}: {s['published_posts']:,} posts "
        + ("(reused)" if s["reused"] else f"(seeded in {s['seconds']} s)")
        for s in run["seeds"]
    )
    secs = run["seconds"]
    md.append(
        f"Data: {seeds}. Time: build {secs['build']} s, data {secs['seed']} s, "
        f"load {secs['load']} s, total {secs['total']} s. argon2id verification "
        f"{argon2['mean_ms']:.1f} ms ({argon2['before_ms']:.1f} ms before the login flood, "
        f"{argon2['after_ms']:.1f} ms after; means of {argon2['iterations']}) → ceiling {ceiling:.0f} logins/s on {run['cores']} cores"
        + (
            f"; {argon2['threads']} threads verifying at once managed "
            f"{argon2['parallel_per_s']:.0f}/s (diagnostic).\n"
            if argon2.get("parallel_per_s")
            else ".\n"
        )
    )
    md.append(
        "| Scenario | req/s | p50 ms | p99 ms | peak RSS MiB | floor | ratio | target | verdict | non-2xx / socket err |"
    )
    md.append("|---|---:|---:|---:|---:|---|---:|---|---|---:|")
    for row in rows:
        if row["floor"] is None:
            floor = "—"
        elif row["floor_kind"] == "p50-same":
            floor = f"{row['floor']} (p50 {row['floor_value']:.2f} ms)" if row["floor_value"] else row["floor"]
        elif row["floor_value"]:
            floor = f"{row['floor']} ({row['floor_value']:,.0f}/s)"
        else:
            floor = row["floor"]
        if row["ratio"] is None:
            ratio = "—"
        elif row["floor_kind"] == "p50-same":
            ratio = f"{row['ratio']:.2f}×"
        else:
            ratio = f"{row['ratio']:.0%}"
        md.append(
            f"| `{row['name']}` {row['label']} | {fmt_num(row['rps'])} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {fmt_num(row['peak_rss_mib'], 1)} | {floor} | {ratio} | "
            f"{row['target'] or '—'} | {row['verdict']} | {row['non2xx']} / {row['socket_errors']} |"
        )
    md.append("")
    if export and export["ok"]:
        md.append(
            f"Export (`POST /v1/exports`, user1's {export['posts_expected']:,} posts, NDJSON): "
            f"succeeded in {export['export_s']} s after the 202 → **{export['posts_per_s']:,} posts/s**; "
            f"peak RSS {export['peak_rss_mib']} MiB during the export, "
            f"{export['peak_rss_with_download_mib']} MiB with the download "
            f"(from {export['rss_before_mib']} MiB before; bound {EXPORT_RSS_LIMIT_MIB} MiB); "
            f"file {export['file_mib']} MiB, {export['posts_in_file']:,} lines, downloaded in "
            f"{export['download_s']} s.\n"
        )
    md.append("Herald's logs (JSON at info, one access line a request):\n")
    for name, info in herald_logs.items():
        lines = f"{info['lines']:,} lines" if info["lines"] is not None else "?"
        text = (
            f"- {name}: {lines}, {info['errors']} errors, {info['warnings']} warnings, "
            f"{info['non_json_lines']} non-JSON lines"
        )
        if info["samples"]:
            text += "; e.g. " + " | ".join(f"`{s}`" for s in info["samples"])
        md.append(text)
    md.append("")
    if failures:
        md.append("**FAILED** (non-2xx responses or socket errors):\n")
        md.extend(f"- {f}" for f in failures)
        md.append("")
    if misses and not run["quick"]:
        md.append(f"Targets missed (reported, not failed): {', '.join(misses)}.\n")
    text = "\n".join(md)
    (out / "latest.md").write_text(text)
    print(text)
    if failures:
        print(f"scripts/bench: {len(failures)} scenario(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
