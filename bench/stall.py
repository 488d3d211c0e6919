#!/usr/bin/env python3
"""bench/stall.py URL ROUNDS [ERROR_LOG]: the stall benchmark's client (run it through
scripts/bench-stall.sh, which starts the sandbox and the nginx of bench/stall_app.lua).

While the single nginx worker at URL creates one big task (GET /send), a pinger thread
sends GET /ping (answered by nginx at once, no Lua) every millisecond over one keep-alive
connection and records each ping's latency. A ping counts for a send when it was under
way at any moment of it. Five ways to send - content handler (auto: the subrequest), the
same with the cosocket transport, timer, CSV source from a content handler (subrequest,
then cosocket) - each with the sliced encode (slice_rows left at its default) and today's
one-call encode (slice_rows = 0), interleaved in every round; each figure is the
median over ROUNDS rounds, after one warm-up send of each way. Prints p50 / p99 / max ping
latency, the pings answered during the send, the send's time (measured in nginx: encode
and send until the answer) and the ratio max(one call) / max(sliced). Exits non-zero
when a send fails or nginx logged an error."""
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse

WAYS = [  # (label, via, src, transport: None for the client's default)
    ("content handler", "content", "table", None),
    ("content handler, cosocket transport", "content", "table", "cosocket"),
    ("timer (ngx.timer.at)", "timer", "table", None),
    ("CSV source, content handler", "content", "csv", None),
    ("CSV source, content handler, cosocket", "content", "csv", "cosocket"),
]
ENCODES = [("sliced", "sliced (default slice_rows)"), ("one", "one call (slice_rows = 0)")]
PING_EVERY = 0.001
MARGIN = 0.03  # seconds of pinging before and after each send
TRACE = float(os.environ.get("STALL_TRACE") or 0)  # > 0: list the pings slower than that (ms)


class Pinger(threading.Thread):
    """Pings while `active` is set; samples are (start, end) in perf_counter seconds."""

    def __init__(self, host, port):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.active = threading.Event()
        self.samples = []

    def ping(self):
        t0 = time.perf_counter()
        self.conn.request("GET", "/ping")
        resp = self.conn.getresponse()
        resp.read()
        t1 = time.perf_counter()
        if resp.status != 200:
            raise RuntimeError("/ping answered %d" % resp.status)
        self.samples.append((t0, t1))
        return t0

    def run(self):
        while True:
            self.active.wait()
            t0 = self.ping()
            # the next ping 1 ms after this one started, or at once after a slow one
            delay = t0 + PING_EVERY - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def window(self, start, end):
        """Latencies (ms) of the pings under way at some moment of [start, end]."""
        return [(b - a) * 1000 for a, b in list(self.samples) if b >= start and a <= end]


def pct(values, p):
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(len(s) * p / 100.0 + 0.999999) - 1))]


def get(conn, path):
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read().decode()
    return resp.status, body, resp.getheader("Server")


def measure(pinger, conn, way, encode, name, rows):
    """One send with pings around it -> dict of figures."""
    _, via, src, transport = way
    pinger.samples = []
    pinger.active.set()
    time.sleep(MARGIN)
    args = {"via": via, "src": src, "encode": encode, "name": name}
    if transport:
        args["transport"] = transport
    query = urllib.parse.urlencode(args)
    start = time.perf_counter()
    status, body, _ = get(conn, "/send?" + query)
    end = time.perf_counter()
    time.sleep(MARGIN)
    pinger.active.clear()
    time.sleep(0.01)  # the ping under way ends
    try:
        res = json.loads(body)
    except ValueError:
        res = {"error": body[:500]}
    if status != 200 or "error" in res or res.get("rows") != rows:
        raise RuntimeError("send %s failed (%d): %s" % (name, status, body[:500]))
    lat = pinger.window(start, end)
    if not lat:
        raise RuntimeError("no ping was answered during send %s" % name)
    if TRACE:  # where in the send the slow pings were: "+start ms: latency ms"
        slow = ["+%.0f: %.1f" % ((a - start) * 1000, (b - a) * 1000) for a, b in pinger.samples
                if b - a > TRACE / 1000.0 and b >= start and a <= end]
        print("  %s: send %.0f ms, %s ms; pings over %g ms: %s" % (
            name, (end - start) * 1000, res["ms"], TRACE, ", ".join(slow) or "none"))
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat), "pings": len(lat),
            "send": res["ms"], "wall": (end - start) * 1000}


def wait_ready(conn):
    for _ in range(200):
        try:
            status, body, server = get(conn, "/info")
            if status == 200:
                info = json.loads(body)
                info["server"] = server
                return info
        except (OSError, http.client.HTTPException):
            conn.close()
        time.sleep(0.05)
    raise RuntimeError("the app does not answer /info")


def idle_figures(pinger):
    pinger.samples = []
    pinger.active.set()
    time.sleep(0.5)
    pinger.active.clear()
    time.sleep(0.01)
    lat = [(b - a) * 1000 for a, b in pinger.samples]
    return pct(lat, 50), pct(lat, 99), max(lat), len(lat)


def run_rounds(pinger, conn, rounds, rows):
    tag = "%d" % time.time()
    results = {}
    for w, way in enumerate(WAYS):  # warm-up: traces, TLS sessions, upstream connections
        measure(pinger, conn, way, "sliced", "stall-%s-warm-%d" % (tag, w), rows)
    for r in range(rounds):
        for w, way in enumerate(WAYS):
            order = ENCODES if r % 2 == 0 else ENCODES[::-1]
            for enc, _ in order:
                name = "stall-%s-%d-%d-%s" % (tag, r, w, enc)
                results.setdefault((way[0], enc), []).append(
                    measure(pinger, conn, way, enc, name, rows))
    return results


def median_of(runs, key):
    return statistics.median(x[key] for x in runs)


def print_table(results, rows, slice_rows):
    labels = dict(ENCODES)
    if slice_rows is not None:
        labels["sliced"] = "sliced (slice_rows = %d)" % slice_rows
    print("| %s numbers | encode | ping p50 ms | p99 ms | max ms | pings answered | send ms "
          "| max: one call / sliced |" % "{:,}".format(rows))
    print("|---|---|---|---|---|---|---|---|")
    for label, _, _, _ in WAYS:
        maxes = {}
        for enc, _ in ENCODES:
            enc_label = labels[enc]
            runs = results[(label, enc)]
            maxes[enc] = median_of(runs, "max")
            ratio = "%.2fx" % (maxes["one"] / maxes["sliced"]) if enc == "one" else ""
            print("| %s | %s | %.2f | %.2f | %.1f | %d | %.0f | %s |" % (
                label, enc_label, median_of(runs, "p50"), median_of(runs, "p99"), maxes[enc],
                median_of(runs, "pings"), median_of(runs, "send"), ratio))


def log_lines(path):
    """nginx's error log: (errors, alerts and crits; warnings)."""
    bad, warns = [], []
    try:
        with open(path) as f:
            for line in f:
                if "[error]" in line or "[alert]" in line or "[crit]" in line:
                    bad.append(line.rstrip())
                elif "[warn]" in line:
                    warns.append(line.rstrip())
    except OSError:
        pass
    return bad, warns


def main():
    url = urllib.parse.urlparse(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    info = wait_ready(conn)
    rows = info["rows"]
    pinger = Pinger(url.hostname, url.port)
    pinger.start()
    print("stall benchmark: one worker of %s (lua module, LuaJIT) creating a task of %s numbers "
          "against the sandbox (HTTPS); GET /ping every 1 ms on one keep-alive connection "
          "during the send; median of %d rounds" % (info["server"], "{:,}".format(rows), rounds))
    p50, p99, mx, n = idle_figures(pinger)
    print("idle worker, for scale: ping p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d pings in 0.5 s)"
          % (p50, p99, mx, n))
    results = run_rounds(pinger, conn, rounds, rows)
    print_table(results, rows, info.get("slice_rows"))
    errors, warns = log_lines(sys.argv[3]) if len(sys.argv) > 3 else ([], [])
    if warns:  # e.g. lua-nginx-module's about ngx.sleep(0) on an nginx without OpenResty's patch
        print("note: nginx logged %d warnings, the first: %s" % (len(warns), warns[0]))
    for line in errors:
        print("FAIL: nginx logged: " + line)
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, http.client.HTTPException) as e:
        print("bench/stall.py: %s" % e, file=sys.stderr)
        sys.exit(1)
