#!/usr/bin/python3
"""Checks the Kubernetes API double with real clients: Debian's kubectl and python3-kubernetes
must accept what it serves (discovery, list paging, watch streams with bookmarks, 410 on an
expired resourceVersion, 403 Status errors, Services and Nodes).

Usage: real_clients_test.py PATH/TO/k8s_api_double.py   (exit status 0 = pass)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import ssl

DOUBLE = sys.argv.pop(1) if len(sys.argv) > 1 else None
TOKEN = "real-clients-token"
NS = "shop"


def sh(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=60, **kw)


def slice_obj(name, svc, ips, terminating=()):
    return {"kind": "EndpointSlice", "metadata": {
        "name": name, "namespace": NS,
        "labels": {"kubernetes.io/service-name": svc,
                   "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip],
                       "conditions": {"ready": ip not in terminating, "serving": True,
                                      "terminating": ip in terminating},
                       "nodeName": "node-1", "zone": "zone-a",
                       "hints": {"forZones": [{"name": "zone-a"}]},
                       "targetRef": {"kind": "Pod", "namespace": NS, "name": "pod-" + ip}}
                      for ip in ips],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


class RealClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("kubectl") is None:
            raise unittest.SkipTest("kubectl not installed")
        cls.dir = tempfile.mkdtemp(prefix="k8s-real-clients-")
        d = cls.dir
        with open(d + "/ext", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key",
           "-out", d + "/ca.crt", "-days", "2", "-subj", "/CN=test-ca")
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/srv.key",
           "-out", d + "/srv.csr", "-subj", "/CN=127.0.0.1")
        sh("openssl", "x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.crt", "-CAkey",
           d + "/ca.key", "-CAcreateserial", "-out", d + "/srv.crt", "-days", "2", "-extfile",
           d + "/ext")
        cls.log = open(d + "/double.log", "w")
        cls.proc = subprocess.Popen(
            [sys.executable if os.path.exists(sys.executable) else "python3", DOUBLE,
             "--port-file", d + "/port", "--tls-cert", d + "/srv.crt", "--tls-key",
             d + "/srv.key", "--token", TOKEN], stdout=cls.log, stderr=cls.log)
        for _ in range(600):
            if os.path.exists(d + "/port"):
                break
            time.sleep(0.05)  # polling for the child's port file (not a test wait on behaviour)
        with open(d + "/port") as f:
            cls.port = int(f.read())
        cls.url = "https://127.0.0.1:%d" % cls.port
        cls.kubeconfig = d + "/kubeconfig"
        with open(cls.kubeconfig, "w") as f:
            f.write("""apiVersion: v1
kind: Config
clusters:
- name: double
  cluster:
    server: %s
    certificate-authority: %s/ca.crt
users:
- name: ep
  user:
    token: %s
contexts:
- name: test
  context: {cluster: double, user: ep, namespace: %s}
current-context: test
""" % (cls.url, d, TOKEN, NS))
        cls.ctx = ssl.create_default_context(cafile=d + "/ca.crt")
        cls.control("/_test/apply", [slice_obj("web-%d" % i, "web", ["10.0.0.%d" % i])
                                     for i in range(1, 4)]
                    + [slice_obj("other-1", "other", ["10.9.0.1"])])
        cls.control("/_test/apply", {"kind": "Service", "metadata": {"name": "web", "namespace": NS},
                                     "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                                              "ports": [{"name": "http", "port": 80,
                                                         "targetPort": "http",
                                                         "nodePort": 30080, "protocol": "TCP"}]},
                                     "status": {"loadBalancer": {}}})
        cls.control("/_test/apply", {"kind": "Node", "metadata": {"name": "node-1"},
                                     "status": {"addresses": [
                                         {"type": "InternalIP", "address": "172.16.0.1"}]}})

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def control(cls, path, body=None):
        data = json.dumps(body if body is not None else {}).encode()
        req = urllib.request.Request(cls.url + path, data=data if path != "/_test/stats" else None)
        with urllib.request.urlopen(req, context=cls.ctx, timeout=30) as r:
            return json.loads(r.read())

    def kubectl(self, *args, check=True, timeout=60):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        r = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check and r.returncode != 0:
            self.fail("kubectl %s failed: %s" % (" ".join(args), r.stderr))
        return r

    SEL = "labelSelector=kubernetes.io%2Fservice-name%3Dweb"
    BASE = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"

    # --- kubectl
    def test_kubectl_raw_discovery_and_paged_list(self):
        self.assertIn("v1", json.loads(self.kubectl("get", "--raw", "/api").stdout)["versions"])
        groups = json.loads(self.kubectl("get", "--raw", "/apis").stdout)["groups"]
        self.assertIn("discovery.k8s.io", [g["name"] for g in groups])
        page = json.loads(self.kubectl("get", "--raw", "%s?%s&limit=2" % (self.BASE, self.SEL)).stdout)
        self.assertEqual(page["kind"], "EndpointSliceList")
        self.assertEqual(len(page["items"]), 2)
        self.assertTrue(page["metadata"]["continue"])
        # kubectl's own pager follows continue tokens.
        out = self.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                           "--chunk-size=1", "-o", "json").stdout
        names = sorted(i["metadata"]["name"] for i in json.loads(out)["items"])
        self.assertEqual(names, ["web-1", "web-2", "web-3"])
        out = self.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name in (web,other)",
                           "-o", "name").stdout.split()
        self.assertEqual(len(out), 4)
        svc = json.loads(self.kubectl("get", "service", "web", "-o", "json").stdout)
        self.assertEqual(svc["spec"]["ports"][0]["nodePort"], 30080)
        nodes = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)
        self.assertEqual(nodes["items"][0]["status"]["addresses"][0]["address"], "172.16.0.1")

    def test_kubectl_raw_watch_streams_events_and_bookmarks(self):
        self.control("/_test/config", {"bookmark_interval": 0.3})
        rv = json.loads(self.kubectl("get", "--raw", "%s?%s" % (self.BASE, self.SEL)).stdout)[
            "metadata"]["resourceVersion"]
        t = threading.Timer(0.5, lambda: self.control("/_test/apply", slice_obj(
            "web-1", "web", ["10.0.0.1", "10.0.0.11"], terminating=("10.0.0.1",))))
        t.start()
        out = self.kubectl("get", "--raw", "%s?%s&watch=true&allowWatchBookmarks=true"
                           "&resourceVersion=%s&timeoutSeconds=2" % (self.BASE, self.SEL, rv)).stdout
        t.join()
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        types = [e["type"] for e in events]
        self.assertIn("MODIFIED", types)
        self.assertIn("BOOKMARK", types)
        mod = [e for e in events if e["type"] == "MODIFIED"][0]["object"]
        self.assertEqual(mod["endpoints"][0]["conditions"]["terminating"], True)
        # kubectl's typed watch prints the changed object.
        t = threading.Timer(1.0, lambda: self.control("/_test/apply", slice_obj(
            "web-2", "web", ["10.0.0.2", "10.0.0.22"])))
        t.start()
        r = self.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                         "--watch-only", "-o", "name", "--request-timeout=4s", check=False)
        t.join()
        self.assertIn("endpointslice.discovery.k8s.io/web-2", r.stdout)

    def test_kubectl_sees_410_and_403_statuses(self):
        self.control("/_test/apply", slice_obj("web-3", "web", ["10.0.0.3", "10.0.0.33"]))
        self.control("/_test/compact")
        out = self.kubectl("get", "--raw", "%s?%s&watch=true&resourceVersion=1&timeoutSeconds=2"
                           % (self.BASE, self.SEL)).stdout
        ev = json.loads(out.splitlines()[0])
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual(ev["object"]["code"], 410)
        self.assertEqual(ev["object"]["reason"], "Expired")
        self.control("/_test/config", {"forbid": ["list endpointslices"]})
        try:
            r = self.kubectl("get", "endpointslices", check=False)
        finally:
            self.control("/_test/config", {"forbid": []})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('cannot list resource "endpointslices" in API group "discovery.k8s.io"',
                      r.stderr)

    # --- python3-kubernetes
    def test_python_client_lists_pages_and_watches(self):
        from kubernetes import client, config, watch
        api_client = config.new_client_from_config(config_file=self.kubeconfig)
        disc = client.DiscoveryV1Api(api_client)
        items, cont = [], None
        while True:
            page = disc.list_namespaced_endpoint_slice(
                NS, label_selector="kubernetes.io/service-name=web", limit=1, _continue=cont)
            items += page.items
            cont = page.metadata._continue
            if not cont:
                break
        self.assertEqual(sorted(i.metadata.name for i in items), ["web-1", "web-2", "web-3"])
        ep = items[0].endpoints[0]
        self.assertEqual(ep.node_name, "node-1")
        self.assertEqual(ep.hints.for_zones[0].name, "zone-a")
        rv = page.metadata.resource_version
        threading.Timer(0.5, lambda: self.control("/_test/apply", slice_obj(
            "web-2", "web", ["10.0.0.2", "10.0.0.200"], terminating=("10.0.0.2",)))).start()
        threading.Timer(0.7, lambda: self.control("/_test/delete", {
            "kind": "EndpointSlice", "namespace": NS, "name": "web-3"})).start()
        seen = []
        w = watch.Watch()
        for ev in w.stream(disc.list_namespaced_endpoint_slice, NS,
                           label_selector="kubernetes.io/service-name=web",
                           resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=2):
            seen.append((ev["type"], ev["raw_object"].get("metadata", {}).get("name")))
            if ev["type"] == "MODIFIED":
                self.assertTrue(ev["object"].endpoints[0].conditions.terminating)
            if ("DELETED", "web-3") in seen:
                w.stop()
        self.assertIn(("MODIFIED", "web-2"), seen)
        self.assertIn(("DELETED", "web-3"), seen)
        core = client.CoreV1Api(api_client)
        svc = core.read_namespaced_service("web", NS)
        self.assertEqual(svc.spec.ports[0].node_port, 30080)
        self.assertEqual(core.list_node().items[0].status.addresses[0].address, "172.16.0.1")

    def test_services_and_nodes_list_and_watch_with_both_clients(self):
        """What the Services and Nodes watches of the source use (node / cluster_ip /
        load_balancer modes): list then watch from its resourceVersion, with bookmarks."""
        from kubernetes import client, config, watch
        self.control("/_test/config", {"bookmark_interval": 0.3})
        api_client = config.new_client_from_config(config_file=self.kubeconfig)
        core = client.CoreV1Api(api_client)
        svcs = core.list_namespaced_service(NS, limit=10)
        self.assertIn("web", [s.metadata.name for s in svcs.items])
        lb = {"kind": "Service", "metadata": {"name": "web", "namespace": NS},
              "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                       "ports": [{"name": "http", "port": 80, "targetPort": "http",
                                  "nodePort": 30080, "protocol": "TCP"}]},
              "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}}
        threading.Timer(0.5, lambda: self.control("/_test/apply", lb)).start()
        seen = []
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_service, NS,
                           resource_version=svcs.metadata.resource_version,
                           allow_watch_bookmarks=True, timeout_seconds=3):
            seen.append(ev["type"])
            if ev["type"] == "MODIFIED":
                self.assertEqual(ev["object"].status.load_balancer.ingress[0].ip, "192.0.2.9")
                w.stop()
        self.assertIn("MODIFIED", seen)

        nodes = core.list_node()
        node2 = {"kind": "Node", "metadata": {"name": "node-2"},
                 "status": {"addresses": [{"type": "InternalIP", "address": "172.16.0.2"}]}}
        threading.Timer(0.5, lambda: self.control("/_test/apply", node2)).start()
        threading.Timer(0.8, lambda: self.control("/_test/delete", {
            "kind": "Node", "namespace": "", "name": "node-2"})).start()
        seen = []
        w = watch.Watch()
        for ev in w.stream(core.list_node, resource_version=nodes.metadata.resource_version,
                           allow_watch_bookmarks=True, timeout_seconds=3):
            seen.append((ev["type"], ev["raw_object"].get("metadata", {}).get("name")))
            if ev["type"] == "ADDED":
                self.assertEqual(ev["object"].status.addresses[0].address, "172.16.0.2")
            if ("DELETED", "node-2") in seen:
                w.stop()
        self.assertIn(("ADDED", "node-2"), seen)
        self.assertIn(("DELETED", "node-2"), seen)

        # kubectl: a raw watch of the nodes streams events and bookmarks.
        rv = json.loads(self.kubectl("get", "--raw", "/api/v1/nodes").stdout)[
            "metadata"]["resourceVersion"]
        threading.Timer(0.5, lambda: self.control("/_test/apply", node2)).start()
        out = self.kubectl("get", "--raw", "/api/v1/nodes?watch=true&allowWatchBookmarks=true"
                           "&resourceVersion=%s&timeoutSeconds=2" % rv).stdout
        types = [json.loads(line)["type"] for line in out.splitlines() if line.strip()]
        self.assertIn("ADDED", types)
        self.assertIn("BOOKMARK", types)

    def test_python_client_watch_from_an_expired_version_raises_410(self):
        from kubernetes import client, config, watch
        from kubernetes.client.rest import ApiException
        api_client = config.new_client_from_config(config_file=self.kubeconfig)
        disc = client.DiscoveryV1Api(api_client)
        self.control("/_test/apply", slice_obj("web-1", "web", ["10.0.0.1"]))
        self.control("/_test/compact")
        with self.assertRaises(ApiException) as cm:
            for _ in watch.Watch().stream(disc.list_namespaced_endpoint_slice, NS,
                                          resource_version="1", timeout_seconds=2):
                pass
        self.assertEqual(cm.exception.status, 410)


if __name__ == "__main__":
    unittest.main(verbosity=2)
