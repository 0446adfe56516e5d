#!/usr/bin/env python3
"""Routing by group at 100,000 members (bench/groups.sh runs this against a release gateway).

Creates USERS users and a group "Big" holding all of them (Entra's member-add PATCHes of 5,000),
with one target whose scope reads group names without naming one (`groups.display sw
"Elsewhere"`: every group change concerns it, and no user is ever in it, so nothing is sent to
the simulator and the figures are the gateway's own), then measures:

- adding 50 users to a 1,000-member group and to the 100,000-member one: the PATCH's latency and
  the deliveries it queued for the scoped target (the other members are not read);
- renaming the 100,000-member group: the PATCH's latency (one fan-out row), the time until every
  member's delivery is queued and settled, and the latency of other users' PATCHes (16 at once)
  before and during the fan-out;
- deleting it: the DELETE's latency (every member moves out in the delete's transaction).
"""
import http.client, json, os, sqlite3, statistics, subprocess, sys, threading, time, urllib.parse

url = urllib.parse.urlparse(os.environ["URL"])
token = os.environ["TOKEN"]
users = int(os.environ.get("USERS", "100000"))
store = os.environ["STORE"]  # sqlite file path, or "postgres:<url>:<schema>"
H = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
local = threading.local()


def conn():
    c = getattr(local, "c", None)
    if c is None:
        c = local.c = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    return c


def call(method, path, body=None):
    data = json.dumps(body) if body is not None else None
    for attempt in (1, 2):
        c = conn()
        t = time.perf_counter()
        try:
            c.request(method, url.path + path, body=data, headers=H)
            r = c.getresponse()
            text = r.read()
            break
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed an idle keep-alive connection: a new one.
            local.c = None
            if attempt == 2:
                raise
    ms = (time.perf_counter() - t) * 1000
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {text[:300]!r}")
    return (json.loads(text) if text else None), ms


def parallel(n, items, f):
    out, lock, it = [], threading.Lock(), iter(items)
    def work():
        while True:
            with lock:
                x = next(it, None)
            if x is None:
                return
            r = f(x)
            with lock:
                out.append(r)
    ts = [threading.Thread(target=work) for _ in range(n)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return out


def sql(q):
    if store.startswith("postgres:"):
        _, rest = store.split(":", 1)
        db, schema = rest.rsplit("|", 1)
        out = subprocess.run(["psql", db, "-tAc", f"SET search_path TO {schema}; {q}"], capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=60) as c:
        return str(c.execute(q).fetchone()[0])


def deliveries(extra=""):
    return int(sql(f"SELECT count(*) FROM deliveries WHERE target = 'scoped' {extra}"))


def settle(timeout=1800):
    t = time.time()
    while time.time() - t < timeout:
        if int(sql("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'failed')")) == 0:
            return time.time() - t
        time.sleep(0.2)
    raise SystemExit("deliveries did not settle")


def user(i):
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"u{i}@example.com", "active": True}
    return call("POST", "/Users", body)[0]["id"]


def add(group, ids):
    ops = [{"op": "Add", "path": "members", "value": [{"value": i} for i in ids]}]
    return call("PATCH", f"/Groups/{group}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})[1]


def group(name):
    return call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})[0]["id"]


t = time.time()
ids = parallel(16, range(users + 1100), user)
print(f"created {len(ids)} users in {time.time() - t:.1f} s")
big, small = group("Big"), group("Small")
extra, rest = ids[users:users + 1100], ids[:users]
t = time.time()
for k in range(0, users, 5000):
    add(big, rest[k:k + 5000])
add(small, extra[:1000])
print(f"filled Big with {users} members (PATCHes of 5,000) and Small with 1,000 in {time.time() - t:.1f} s; settling")
print(f"  settled in {settle():.1f} s")

for name, g, chunk in (("1,000", small, extra[1000:1050]), (f"{users:,}", big, extra[1050:1100])):
    before = deliveries()
    ms = add(g, chunk)
    print(f"add 50 members to the {name}-member group: {ms:.1f} ms, deliveries queued for the scoped target: {deliveries() - before}")
    settle()

# Other users' PATCHes, 16 at once, for 10 s before `action` and while it lasts.
lat, stop = [], threading.Event()
def patcher(k):
    i = 0
    while not stop.is_set():
        uid = rest[(k * 7919 + i) % len(rest)]
        i += 1
        ops = [{"op": "Replace", "path": "displayName", "value": f"n{i}"}]
        lat.append((time.time(), call("PATCH", f"/Users/{uid}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})[1]))
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")
def meanwhile(what, action):
    lat.clear()
    stop.clear()
    ts = [threading.Thread(target=patcher, args=(k,)) for k in range(16)]
    [t.start() for t in ts]
    time.sleep(10)
    began = time.time()
    action()
    ended = time.time()
    stop.set()
    [t.join() for t in ts]
    bef = [l for (at, l) in lat if at < began]
    dur = [l for (at, l) in lat if began <= at <= ended]
    print(f"other users' PATCHes, 16 at once: before p50 {pct(bef, .5):.1f} ms p99 {pct(bef, .99):.1f} ms max {max(bef):.1f} ms ({len(bef)}); "
          f"during the {what} p50 {pct(dur, .5):.1f} ms p99 {pct(dur, .99):.1f} ms max {max(dur) if dur else float('nan'):.1f} ms ({len(dur)})")
    return began

def rename():
    _, ms = call("PATCH", f"/Groups/{big}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                              "Operations": [{"op": "Replace", "path": "displayName", "value": "Big 2"}]})
    at = time.time()
    rows = deliveries("AND resource_type = 'GroupMembers'")
    print(f"rename of the {users:,}-member group: {ms:.1f} ms (fan-out rows queued: {rows})")
    while int(sql("SELECT count(*) FROM deliveries WHERE resource_type = 'GroupMembers' AND state = 'done'")) == 0:
        time.sleep(0.1)
    print(f"fan-out: every member's delivery queued {time.time() - at:.1f} s after the rename")
renamed_at = meanwhile("fan-out", rename)
settle()
print(f"  every member's delivery settled {time.time() - renamed_at:.1f} s after the rename")

def delete():
    _, ms = call("DELETE", f"/Groups/{big}")
    print(f"delete of the {users:,}-member group: {ms:.1f} ms")
meanwhile("delete", delete)
print(f"  settled in {settle():.1f} s")
