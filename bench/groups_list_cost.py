#!/usr/bin/env python3
"""What `groups` on every user costs a reader: 5,000 users in 3 groups each, pages of 100 and GETs
by id, with and without excludedAttributes=groups. URL and TOKEN of a gateway (bench/lib.sh
start_gateway); loopback only."""
import http.client, json, os, time, urllib.parse, threading
url = urllib.parse.urlparse(os.environ["URL"]); token = os.environ["TOKEN"]
H = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
c = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
def call(m, p, b=None):
    c.request(m, url.path + p, body=json.dumps(b) if b is not None else None, headers=H)
    r = c.getresponse(); t = r.read()
    assert r.status < 300, (r.status, t[:200]); return json.loads(t) if t else None
ids = [call("POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"l{i}@x.com"})["id"] for i in range(5000)]
for name in ("A", "B", "C"):
    g = call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})["id"]
    for k in range(0, 5000, 2500):
        call("PATCH", f"/Groups/{g}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": [{"value": i} for i in ids[k:k+2500]]}]})
def run(q, n=300):
    t = time.perf_counter()
    for i in range(n):
        call("GET", f"/Users?startIndex={1 + (i * 100) % 4900}&count=100{q}")
    return (time.perf_counter() - t) / n * 1000
res = {"default": [], "excluded": [], "get": [], "get_ex": []}
for _ in range(3):
    res["default"].append(run(""))
    res["excluded"].append(run("&excludedAttributes=groups"))
    t = time.perf_counter()
    for i in range(1000): call("GET", f"/Users/{ids[i]}")
    res["get"].append((time.perf_counter() - t))
    t = time.perf_counter()
    for i in range(1000): call("GET", f"/Users/{ids[i]}?excludedAttributes=groups")
    res["get_ex"].append((time.perf_counter() - t))
print("list of 100 users, each in 3 groups, ms per request (3 rounds, alternated):")
print("  with groups (default):", ", ".join(f"{x:.2f}" for x in res["default"]))
print("  excludedAttributes=groups:", ", ".join(f"{x:.2f}" for x in res["excluded"]))
print("GET /Users/{id}, ms per request: with groups", ", ".join(f"{x:.3f}" for x in res["get"]), "; excluded", ", ".join(f"{x:.3f}" for x in res["get_ex"]))
