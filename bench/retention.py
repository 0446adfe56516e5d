"""Fills the store with ROWS done deliveries (one attempt each, 40 days old), prints its size,
then, while 8 clients POST users, waits for the gateway's own purge to start, measures the POST
latencies before it and while it runs, up to WINDOW seconds (and the rows it purged meanwhile), stops
the clients, waits for the purge's end (its log line) and prints the size after. Driven by
bench/retention.sh."""
import json, os, subprocess, threading, time, urllib.request, uuid

URL, TOKEN, ROWS, STORE, BIN, LOG = (os.environ[k] for k in ("URL", "TOKEN", "ROWS", "STORE", "BIN", "LOG"))
ROWS = int(ROWS)
OLD_US = int((time.time() - 40 * 86400) * 1e6)


def v7(us):
    ms = us // 1000
    r = uuid.uuid4().hex
    return f"{ms >> 16:08x}-{ms & 0xffff:04x}-7{r[:3]}-8{r[3:6]}-{r[6:18]}"


def fill():
    if STORE.startswith("postgres:"):
        base, schema = STORE[len("postgres:"):].split("|")
        sql = f"""
SET search_path = {schema};
INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, attempts, due_us, created_us, updated_us)
SELECT lpad(to_hex(({OLD_US} / 1000 + g) >> 16), 8, '0') || '-' || lpad(to_hex(({OLD_US} / 1000 + g) & 65535), 4, '0')
       || '-7000-8000-' || lpad(to_hex(g), 12, '0'),
       (SELECT id FROM tenants LIMIT 1), 'crm', 'User', 'u' || g, 'done', 1, 1, {OLD_US}, {OLD_US}, {OLD_US}
FROM generate_series(1, {ROWS}) g;
INSERT INTO delivery_attempts (delivery_id, attempt, at_us, outcome, detail, duration_ms)
SELECT id, 1, created_us, 'done', 'updated', 12 FROM deliveries;
ANALYZE;
"""
        subprocess.run(["psql", base, "-q", "-c", sql], check=True)
    else:
        import sqlite3
        db = sqlite3.connect(STORE, timeout=60)
        tenant = db.execute("SELECT id FROM tenants LIMIT 1").fetchone()[0]
        batch = []
        for i in range(ROWS):
            us = OLD_US + i * 1000
            batch.append((v7(us), tenant, f"u{i}", us))
            if len(batch) == 50000 or i == ROWS - 1:
                with db:
                    db.executemany(
                        "INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, "
                        "attempts, due_us, created_us, updated_us) VALUES (?, ?, 'crm', 'User', ?, 'done', 1, 1, ?, ?, ?)",
                        [(a, b, c, d, d, d) for a, b, c, d in batch])
                    db.executemany(
                        "INSERT INTO delivery_attempts (delivery_id, attempt, at_us, outcome, detail, duration_ms) "
                        "VALUES (?, 1, ?, 'done', 'updated', 12)", [(a, d) for a, _, _, d in batch])
                batch = []
        db.close()


def scimgw(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([f"{BIN}/scimgw", *args], check=True, capture_output=True, text=True, env=e).stdout.strip()


lat, lock, stop = [], threading.Lock(), threading.Event()


def client(c):
    i = 0
    while not stop.is_set():
        body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                           "userName": f"load{c}-{i}-{time.time_ns()}@example.com"}).encode()
        req = urllib.request.Request(URL + "/Users", data=body, method="POST", headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"})
        t = time.perf_counter()
        with urllib.request.urlopen(req) as r:
            r.read()
        with lock:
            lat.append((time.time(), time.perf_counter() - t))
        i += 1
        time.sleep(0.01)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")


t0 = time.time()
fill()
print(f"filled {ROWS:,} done deliveries with their attempts in {time.time() - t0:.0f} s")
retain = {"SCIMGW_RETENTION__DELIVERIES": "30d", "SCIMGW_RETENTION__AUDIT": "400d"}
print(scimgw("purge", "--dry-run", env=retain))
threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
for t in threads:
    t.start()
WINDOW = float(os.environ.get("WINDOW", "60"))


def left():
    if STORE.startswith("postgres:"):
        base, schema = STORE[len("postgres:"):].split("|")
        out = subprocess.run(["psql", base, "-Atc", f"SELECT count(*) FROM {schema}.deliveries WHERE state = 'done'"],
                             check=True, capture_output=True, text=True).stdout
        return int(out.strip())
    import sqlite3
    db = sqlite3.connect(STORE, timeout=60)
    n = db.execute("SELECT count(*) FROM deliveries WHERE state = 'done'").fetchone()[0]
    db.close()
    return n


start_rows = left()
while left() >= start_rows:
    time.sleep(0.5)
p0 = time.time()


log_at = [os.path.getsize(LOG)]


def purged():
    # Only what the log gained since the last look: reading the whole (info-level) log each time
    # held the GIL long enough to show in the clients' own latencies.
    with open(LOG, "rb") as f:
        f.seek(log_at[0])
        more = f.read()
    log_at[0] += len(more)
    return b"retention: purged" in more


# The window: the purge's run (its log line), or WINDOW seconds of it if it lasts longer.
while time.time() - p0 < WINDOW and not purged():
    time.sleep(0.2)
p1 = time.time()
WINDOW = p1 - p0
in_window = start_rows - left()
stop.set()
for t in threads:
    t.join()
before = [d for at, d in lat if at < p0]
during = [d for at, d in lat if p0 <= at <= p1]
print(f"during the first {WINDOW:.0f} s of the purge it removed {in_window:,} deliveries (with their attempts) "
      f"while the clients wrote: {in_window / WINDOW:,.0f} a second")
print(f"POST /Users, 8 clients: before the purge n={len(before)} p50 {pct(before, .5):.1f} ms p99 {pct(before, .99):.1f} ms "
      f"max {max(before) * 1000:.1f} ms; during n={len(during)} p50 {pct(during, .5):.1f} ms p99 {pct(during, .99):.1f} ms "
      f"max {max(during) * 1000:.1f} ms", flush=True)
while left() > 0:
    time.sleep(1)
print(f"purged all {start_rows:,} in {time.time() - p0:.0f} s; after it: " + scimgw("purge", "--dry-run", env=retain))
for line in open(LOG, errors="replace"):
    if "retention:" in line:
        print("gateway log:", line.strip()[:300])
if os.environ.get("SLOW_MS"):
    slow = float(os.environ["SLOW_MS"]) / 1000
    by_s = {}
    for at, d in lat:
        if d > slow:
            by_s[int(at - p0)] = by_s.get(int(at - p0), 0) + 1
    print("POSTs slower than", os.environ["SLOW_MS"], "ms per second from the purge's start:", sorted(by_s.items()))
