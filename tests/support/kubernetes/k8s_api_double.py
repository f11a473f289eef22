#!/usr/bin/env python3
"""A loopback Kubernetes API server double for tests (test-only, not hardened).

Follows the API conventions for what the kubernetes source, kubectl and python3-kubernetes use:
  GET /version, /api, /apis, /api/v1, /apis/discovery.k8s.io, /apis/discovery.k8s.io/v1
  GET /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices   list (labelSelector, limit,
      continue, resourceVersion) and watch (watch=true|1, resourceVersion, allowWatchBookmarks,
      timeoutSeconds): chunked JSON lines {"type","object"}; a resourceVersion older than the
      compaction point answers an ERROR event with a 410 Expired Status; an expired continue
      token answers HTTP 410.
  GET /apis/discovery.k8s.io/v1/endpointslices                 all namespaces (list and watch)
  GET /api/v1/namespaces/NS/services/NAME, /api/v1/namespaces/NS/services, /api/v1/nodes(/NAME)
Every object has its own resourceVersion (one global counter, as etcd's revision); lists carry
the current one. Errors are Status objects (401 Unauthorized, 403 Forbidden naming the verb,
resource, group and namespace, 404 NotFound, 410 Expired, 500).
Auth: bearer tokens (--token, or /_test/config) and/or client certificates (TLS with
--client-ca); no token configured = anonymous allowed.

Test control (no auth): POST /_test/apply {"kind":"EndpointSlice"|"Service"|"Node", ...object}
  POST /_test/delete {"kind","namespace","name"}; POST /_test/compact (every older RV expires);
  POST /_test/config {"tokens":[...], "forbid":["list endpointslices", "watch endpointslices",
  "get services", "list nodes"], "fail_status":500|0, "hang":bool, "hold":bool, "garbage":bool,
  "bookmark_interval":seconds, "expire_continue":N}; POST /_test/close_watches; GET /_test/stats.
Started as: k8s_api_double.py --port-file FILE [--tls-cert C --tls-key K [--client-ca CA]]
            [--token T]; it writes its port to FILE once listening.
"""

import argparse
import base64
import copy
import json
import select
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GROUP = "discovery.k8s.io"


class State:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 100
        self.compacted = 0  # the oldest resourceVersion kept: watches/continues from older ones answer 410
        self.objects = {}  # (kind, ns, name) -> object
        self.events = []  # (rv, type, kind, ns, object)
        self.tokens = set()
        self.forbid = set()
        self.fail_status = 0
        self.hang = False
        self.hold = False
        self.expire_continue = 0  # the next N continue tokens answer 410 Expired  # watches deliver nothing (no events, no bookmarks) while set
        self.garbage = False
        self.bookmark_interval = 1.0
        self.epoch = 0  # bumped by close_watches
        self.stats = {"lists": 0, "watches": 0, "active_watches": 0, "requests": 0,
                      "connections": 0, "unauthorized": 0, "forbidden": 0, "gone": 0}

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def apply(self, obj):
        with self.cond:
            kind = obj.get("kind")
            md = obj.setdefault("metadata", {})
            ns = md.get("namespace", "") if kind != "Node" else ""
            key = (kind, ns, md["name"])
            etype = "MODIFIED" if key in self.objects else "ADDED"
            md["resourceVersion"] = self.next_rv()
            if etype == "ADDED":
                md.setdefault("uid", "uid-%s-%s" % (md["name"], md["resourceVersion"]))
                md.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            md["generation"] = md.get("generation", 0) + 1
            obj["apiVersion"] = GROUP + "/v1" if kind == "EndpointSlice" else "v1"
            self.objects[key] = obj
            self.events.append((self.rv, etype, kind, ns, copy.deepcopy(obj)))
            self.cond.notify_all()
            return obj

    def delete(self, kind, ns, name):
        with self.cond:
            obj = self.objects.pop((kind, ns if kind != "Node" else "", name), None)
            if obj is None:
                return False
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self.next_rv()
            self.events.append((self.rv, "DELETED", kind, ns, obj))
            self.cond.notify_all()
            return True


STATE = State()


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def query_bool(value):
    """Query booleans as the API server parses them (Go's strconv.ParseBool)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def split_selector(text):
    parts, depth, cur = [], 0, ""
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text):
    """Label selector (equality- and set-based) -> list of predicates, or raises ValueError."""
    preds = []
    for req in split_selector(text or ""):
        words = req.split()
        if " notin " in " %s " % req or " in " in " %s " % req:
            op = "notin" if " notin " in " %s " % req else "in"
            key, rest = req.split(" %s " % op, 1) if (" %s " % op) in req else (words[0], "")
            rest = rest.strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise ValueError("unable to parse requirement: %r" % req)
            vals = {v.strip() for v in rest[1:-1].split(",") if v.strip()}
            key = key.strip()
            if op == "in":
                preds.append(lambda l, k=key, v=vals: l.get(k) in v)
            else:
                preds.append(lambda l, k=key, v=vals: l.get(k) not in v)
        elif "!=" in req:
            k, v = [x.strip() for x in req.split("!=", 1)]
            preds.append(lambda l, k=k, v=v: l.get(k) != v)
        elif "==" in req or "=" in req:
            k, v = [x.strip() for x in req.replace("==", "=").split("=", 1)]
            preds.append(lambda l, k=k, v=v: l.get(k) == v)
        elif req.startswith("!"):
            k = req[1:].strip()
            preds.append(lambda l, k=k: k not in l)
        else:
            preds.append(lambda l, k=req: k in l)
    return preds


def matches(obj, preds):
    labels = obj.get("metadata", {}).get("labels", {}) or {}
    return all(p(labels) for p in preds)


RESOURCES = {
    "endpointslices": ("EndpointSlice", GROUP),
    "services": ("Service", ""),
    "nodes": ("Node", ""),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-api-double"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def setup(self):
        super().setup()
        with STATE.cond:
            STATE.stats["connections"] += 1

    # --- helpers
    def send_json(self, code, obj, extra_headers=()):
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def authenticated(self):
        if self.path.startswith("/_test/"):
            return True
        with STATE.cond:
            tokens = set(STATE.tokens)
        if not tokens:
            return True
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in tokens:
            return True
        if isinstance(self.connection, ssl.SSLSocket) and self.connection.getpeercert():
            return True
        with STATE.cond:
            STATE.stats["unauthorized"] += 1
        self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        return False

    def forbidden(self, verb, resource, ns):
        with STATE.cond:
            denied = "%s %s" % (verb, resource) in STATE.forbid
        if not denied:
            return False
        kind, group = RESOURCES[resource]
        with STATE.cond:
            STATE.stats["forbidden"] += 1
        where = ' in the namespace "%s"' % ns if ns else " at the cluster scope"
        msg = ('%s is forbidden: User "system:serviceaccount:ops:elasticproxy" cannot %s resource '
               '"%s" in API group "%s"%s') % (resource + "." + group if group else resource,
                                               verb, resource, group, where)
        self.send_json(403, status(403, "Forbidden", msg,
                                   {"group": group, "kind": resource}))
        return True

    # --- routing
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_test/apply":
            objs = body if isinstance(body, list) else [body]
            out = [STATE.apply(o) for o in objs]
            return self.send_json(200, out if isinstance(body, list) else out[0])
        if path == "/_test/delete":
            ok = STATE.delete(body["kind"], body.get("namespace", ""), body["name"])
            return self.send_json(200 if ok else 404, {"deleted": ok})
        if path == "/_test/compact":
            with STATE.cond:
                STATE.compacted = STATE.rv
                STATE.events = []
                STATE.cond.notify_all()
            return self.send_json(200, {"compacted": STATE.compacted})
        if path == "/_test/config":
            with STATE.cond:
                if "tokens" in body:
                    STATE.tokens = set(body["tokens"])
                if "forbid" in body:
                    STATE.forbid = set(body["forbid"])
                for k in ("fail_status", "hang", "hold", "garbage", "bookmark_interval",
                          "expire_continue"):
                    if k in body:
                        setattr(STATE, k, body[k])
                STATE.cond.notify_all()
            return self.send_json(200, {})
        if path == "/_test/close_watches":
            with STATE.cond:
                STATE.epoch += 1
                STATE.cond.notify_all()
            return self.send_json(200, {})
        self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/_test/stats":
            with STATE.cond:
                return self.send_json(200, dict(STATE.stats, rv=STATE.rv))
        with STATE.cond:
            STATE.stats["requests"] += 1
            hang, fail, garbage = STATE.hang, STATE.fail_status, STATE.garbage
        if not self.authenticated():
            return
        if hang:
            with STATE.cond:
                STATE.cond.wait_for(lambda: not STATE.hang, timeout=600)
            self.close_connection = True
            return
        if fail == 429:
            return self.send_json(429, status(429, "TooManyRequests",
                                              "Too many requests, please try again later."),
                                  extra_headers=[("Retry-After", "2")])
        if fail:
            return self.send_json(fail, status(fail, "InternalError",
                                               "Internal error occurred: etcdserver: leader changed"))
        if garbage:
            return self.send_json(200, b"<html>not json</html>")
        return self.route(parts, q)

    def route(self, parts, q):
        if parts == ["version"]:
            return self.send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0",
                                        "platform": "linux/amd64"})
        if parts == ["api"]:
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "127.0.0.1"}]})
        if parts == ["apis"]:
            gv = {"groupVersion": GROUP + "/v1", "version": "v1"}
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": GROUP, "versions": [gv], "preferredVersion": gv}]})
        if parts == ["apis", GROUP]:
            gv = {"groupVersion": GROUP + "/v1", "version": "v1"}
            return self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP,
                                        "versions": [gv], "preferredVersion": gv})
        if parts == ["api", "v1"]:
            return self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                        "resources": [
                {"name": "services", "singularName": "service", "namespaced": True,
                 "kind": "Service", "verbs": ["get", "list", "watch"], "shortNames": ["svc"]},
                {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
                 "verbs": ["get", "list", "watch"], "shortNames": ["no"]}]})
        if parts == ["apis", GROUP, "v1"]:
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": GROUP + "/v1", "resources": [
                {"name": "endpointslices", "singularName": "endpointslice", "namespaced": True,
                 "kind": "EndpointSlice", "verbs": ["get", "list", "watch"]}]})
        # /apis/discovery.k8s.io/v1/[namespaces/NS/]endpointslices[/NAME]
        # /api/v1/[namespaces/NS/]services[/NAME], /api/v1/nodes[/NAME]
        if len(parts) >= 3 and parts[:3] == ["apis", GROUP, "v1"]:
            rest = parts[3:]
        elif len(parts) >= 2 and parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        else:
            return self.not_found()
        ns = ""
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in RESOURCES:
            return self.not_found()
        resource = rest[0]
        kind, group = RESOURCES[resource]
        if (group == GROUP) != (parts[0] == "apis"):
            return self.not_found()
        if resource == "nodes" and ns:
            return self.not_found()
        if len(rest) == 2:
            if self.forbidden("get", resource, ns):
                return
            with STATE.cond:
                obj = STATE.objects.get((kind, ns, rest[1]))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (
                    resource if not group else resource + "." + group, rest[1]),
                    {"name": rest[1], "group": group, "kind": resource}))
            return self.send_json(200, obj)
        if len(rest) != 1:
            return self.not_found()
        try:
            preds = parse_selector(q.get("labelSelector", ""))
        except ValueError as e:
            return self.send_json(400, status(400, "BadRequest", str(e)))
        if query_bool(q.get("watch", "")):
            if self.forbidden("watch", resource, ns):
                return
            return self.watch(kind, ns, preds, q)
        if self.forbidden("list", resource, ns):
            return
        return self.list(kind, group, ns, preds, q)

    def client_gone(self):
        """A watch client never sends anything: a readable socket means it closed (EOF)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def not_found(self):
        self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))

    def list(self, kind, group, ns, preds, q):
        limit = int(q.get("limit") or 0)
        start, rv = 0, None
        cont = q.get("continue", "")
        with STATE.cond:
            STATE.stats["lists"] += 1
            if cont:
                try:
                    token = json.loads(base64.b64decode(cont))
                    start, rv = token["start"], token["rv"]
                except Exception:
                    return self.send_json(400, status(400, "BadRequest",
                                                      "continue key is not valid"))
                expire = STATE.expire_continue > 0
                STATE.expire_continue = max(0, STATE.expire_continue - 1)
                if int(rv) < STATE.compacted or expire:
                    STATE.stats["gone"] += 1
                    return self.send_json(410, status(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter."))
            items = sorted((o for (k, n, _), o in STATE.objects.items()
                            if k == kind and (not ns or n == ns) and matches(o, preds)),
                           key=lambda o: (o["metadata"].get("namespace", ""),
                                          o["metadata"]["name"]))
            if rv is None:
                rv = str(STATE.rv)
            else:
                # A consistent snapshot: objects as of rv (the double keeps no history of
                # modified objects; a later change shows only if it happened after the first page).
                pass
        page = items[start:start + limit] if limit > 0 else items[start:]
        md = {"resourceVersion": rv}
        if limit > 0 and start + limit < len(items):
            md["continue"] = base64.b64encode(json.dumps(
                {"start": start + limit, "rv": rv}).encode()).decode()
            md["remainingItemCount"] = len(items) - start - limit
        out = []
        for o in page:
            o = copy.deepcopy(o)
            o.pop("kind", None)
            o.pop("apiVersion", None)
            out.append(o)
        self.send_json(200, {"kind": kind + "List", "apiVersion": (group + "/v1") if group else "v1",
                             "metadata": md, "items": out})

    def watch(self, kind, ns, preds, q):
        rv_text = q.get("resourceVersion", "")
        bookmarks = query_bool(q.get("allowWatchBookmarks", ""))
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True

        def chunk(obj):
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        with STATE.cond:
            STATE.stats["watches"] += 1
            STATE.stats["active_watches"] += 1
            epoch = STATE.epoch
        try:
            with STATE.cond:
                if rv_text in ("", "0"):
                    # "Any": the current state as synthetic ADDED events, then changes.
                    pending = [("ADDED", copy.deepcopy(o)) for (k, n, _), o in
                               sorted(STATE.objects.items()) if k == kind and (not ns or n == ns)
                               and matches(o, preds)]
                    last = STATE.rv
                else:
                    last = int(rv_text)
                    pending = []
                    if last < STATE.compacted:
                        STATE.stats["gone"] += 1
                        pending = None
            if pending is None:
                chunk({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %d (%d)" % (
                        last, STATE.compacted))})
                return
            for t, o in pending:
                chunk({"type": t, "object": o})
            next_bookmark = time.monotonic() + STATE.bookmark_interval
            while True:
                with STATE.cond:
                    now = time.monotonic()
                    wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                    new = [e for e in STATE.events if e[0] > last]
                    if not new and wait > 0 and STATE.epoch == epoch:
                        STATE.cond.wait(timeout=min(wait, 0.2))
                        new = [e for e in STATE.events if e[0] > last]
                    if STATE.epoch != epoch:
                        return
                    if STATE.hold:
                        STATE.cond.wait(timeout=0.05)
                        continue
                    if STATE.hang:
                        STATE.cond.wait_for(lambda: not STATE.hang, timeout=600)
                        return
                    current = STATE.rv
                if self.client_gone():
                    return
                for (erv, etype, ekind, ens, obj) in new:
                    last = erv
                    if ekind == kind and (not ns or ens == ns) and matches(obj, preds):
                        chunk({"type": etype, "object": obj})
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now >= next_bookmark:
                    last = max(last, current)
                    chunk({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": GROUP + "/v1" if kind == "EndpointSlice" else "v1",
                        "metadata": {"resourceVersion": str(last)}}})
                    next_bookmark = now + STATE.bookmark_interval
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return
        finally:
            with STATE.cond:
                STATE.stats["active_watches"] -= 1
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca")
    ap.add_argument("--token", action="append", default=[])
    args = ap.parse_args()
    STATE.tokens = set(args.token)
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
