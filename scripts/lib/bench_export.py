#!/usr/bin/env python3
"""scripts/bench's export scenario: one user's NDJSON export, end to end, on a running Herald.

    bench_export.py URL PID EMAIL PASSWORD EXPECTED_POSTS OUT_JSON

Logs in, resets the server's peak RSS (clear_refs), POSTs /v1/exports, polls the Operation
every 50 ms until it is finished, reads the server's peak RSS (VmHWM), then downloads the
file, counting its lines, and reads the peak again (download included). Writes OUT_JSON;
exits non-zero when the export did not succeed or the file does not hold EXPECTED_POSTS lines
(a wrong count is a failure, not a slow run).

Throughput is posts / (finished − POST accepted), as the client sees it: it includes the job
queue's pick-up latency (Herald wakes its runner on the commit, so this is milliseconds).
"""

import json
import sys
import time
import urllib.request

POLL_S = 0.05


def request(method, url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return urllib.request.urlopen(req, timeout=60)


def read_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def main():
    base, pid, email, password, expected, out = sys.argv[1:7]
    expected = int(expected)
    with request("POST", f"{base}/v1/auth/login", body={"email": email, "password": password}) as r:
        token = json.load(r)["accessToken"]

    rss_before = read_kib(pid, "VmRSS")
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")

    t0 = time.monotonic()
    with request("POST", f"{base}/v1/exports", token, {"format": "ndjson"}) as r:
        assert r.status == 202, r.status
        location = r.headers["Operation-Location"]
        operation = json.load(r)
    accepted = time.monotonic()
    polls = 0
    while operation["status"] in ("notStarted", "running"):
        time.sleep(POLL_S)
        polls += 1
        with request("GET", f"{base}{location}", token) as r:
            operation = json.load(r)
    finished = time.monotonic()
    peak_kib = read_kib(pid, "VmHWM")

    result = {
        "posts_expected": expected,
        "status": operation["status"],
        "error": operation.get("error"),
        "export_s": round(finished - accepted, 3),
        "accept_ms": round((accepted - t0) * 1000, 1),
        "polls": polls,
        "rss_before_mib": round(rss_before / 1024, 1) if rss_before else None,
        "peak_rss_mib": round(peak_kib / 1024, 1) if peak_kib else None,
    }
    ok = operation["status"] == "succeeded"
    if ok:
        result["posts_reported"] = operation["result"]["count"]
        lines = size = 0
        t1 = time.monotonic()
        file_url = operation["result"]["fileUrl"]
        if file_url.startswith("/"):
            file_url = base + file_url
        with request("GET", file_url, token) as r:
            while chunk := r.read(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
        result.update(
            peak_rss_with_download_mib=round(read_kib(pid, "VmHWM") / 1024, 1),
            posts_in_file=lines,
            file_mib=round(size / 2**20, 1),
            download_s=round(time.monotonic() - t1, 3),
            posts_per_s=round(expected / max(finished - accepted, 1e-6)),
        )
        ok = lines == expected and result["posts_reported"] == expected
    result["ok"] = ok
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(
        f"    export                   {result.get('posts_per_s', 0):>10} posts/s  "
        f"{result['export_s']} s for {expected} posts, peak RSS {result['peak_rss_mib']} MiB, "
        f"status {result['status']}, {result.get('posts_in_file', 0)} lines",
        file=sys.stderr,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
