# SPDX-License-Identifier: MIT
"""Driving real bitween-agent processes from Python tests: start one with
settings in its environment, wait for its RPC file, call its JSON-RPC API
over HTTP, stop it (SIGTERM) or kill it (SIGKILL), read its log. Standard
library only."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

failures = 0


def check(what, cond, detail=""):
    global failures
    if cond:
        print("ok: " + what, flush=True)
    else:
        failures += 1
        print("FAIL: %s %s" % (what, detail), file=sys.stderr, flush=True)
    return cond


def wait_for(seconds, cond, step=0.05):
    """Poll `cond` until it returns something true or `seconds` pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


class Agent:
    def __init__(self, binary, work, name, env=None):
        self.binary = binary
        self.state = os.path.join(work, name)
        self.log_path = os.path.join(work, name + ".log")
        self.env = dict(env or {})
        self.proc = None
        self.log_from = 0

    def start(self, extra_env=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BITWEEN_")}
        env.update(BITWEEN_AGENT_STATE_DIR=self.state,
                   BITWEEN_AGENT_LISTEN_INTERFACES="127.0.0.1:0",
                   BITWEEN_AGENT_LOG_LEVEL="debug")
        env.update(self.env)
        env.update(extra_env or {})
        self.log = open(self.log_path, "a")
        self.log_from = os.path.getsize(self.log_path)
        rpc_file = os.path.join(self.state, "rpc.json")
        if os.path.exists(rpc_file):
            os.unlink(rpc_file)  # left by a killed agent
        self.proc = subprocess.Popen([self.binary], env=env, stdout=self.log, stderr=self.log)
        ok = wait_for(30, lambda: os.path.exists(rpc_file) or self.proc.poll() is not None)
        if not ok or self.proc.poll() is not None:
            raise SystemExit("agent %s did not start:\n%s" % (self.state, self.log_text()))
        info = json.load(open(rpc_file))
        self.token = info["token"]
        m = re.match(r"http://([0-9.]+):(\d+)(/rpc)$", info["url"])
        self.host, self.port, self.path = m.group(1), int(m.group(2)), m.group(3)
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self.log.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait(60)
        self.log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            f.seek(self.log_from)
            return f.read()

    def http(self, method="POST", path=None, body=b"{}", headers=None, token=True):
        h = {"Host": "%s:%d" % (self.host, self.port), "Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        c.request(method, path or self.path, body=body, headers=h)
        r = c.getresponse()
        out = (r.status, dict(r.getheaders()), r.read())
        c.close()
        return out

    def raw(self, request):
        """Send raw bytes; the status code of the reply."""
        s = socket.create_connection((self.host, self.port), timeout=30)
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return int(data.split(b" ")[1]) if data else 0

    def call(self, method, **params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        status, _, data = self.http(body=body.encode())
        if status != 200:
            raise SystemExit("%s: HTTP %d %s" % (method, status, data))
        return json.loads(data)

    def result(self, method, **params):
        r = self.call(method, **params)
        if "result" not in r:
            raise SystemExit("%s %s: %s" % (method, params, r))
        return r["result"]

    def torrents(self):
        return {t["path"]: t for t in self.result("bt.get_torrents")["torrents"]}

    def view(self):
        """{contact: {resource: {hash: (name, size)}}} from xmpp.get_shares."""
        out = {}
        for c in self.result("xmpp.get_shares")["contacts"]:
            out[c["jid"]] = {r["resource"]: {s["hash"]: (s["name"], s["size"])
                                             for s in r["shares"]}
                             for r in c["resources"]}
        return out


def registered(a):
    return a.result("agent.status")["registration"]["state"] == "registered"


# ---- the stack of tests/with_stack.sh ----------------------------------------

def stack(*args):
    """scripts/stack COMMAND STACK_DIR ARGS..."""
    subprocess.run([os.environ["BITWEEN_STACK_SCRIPT"], args[0], os.environ["BITWEEN_STACK_DIR"]] +
                   list(args[1:]), check=True, stdout=subprocess.DEVNULL)


def stack_service(cmd, service):
    """scripts/stack stop|start|restart pg|prosody STACK_DIR"""
    subprocess.run([os.environ["BITWEEN_STACK_SCRIPT"], cmd, service,
                    os.environ["BITWEEN_STACK_DIR"]], check=True, stdout=subprocess.DEVNULL)


class Component:
    """The real bitween-component on the stack's Prosody and PostgreSQL."""

    def __init__(self, binary, work):
        self.binary = binary
        self.log_path = os.path.join(work, "component.log")
        self.proc = None

    def start(self, **extra):
        env = dict(os.environ)
        env.update(BITWEEN_DOMAINS=os.environ["BITWEEN_STACK_DOMAIN"],
                   BITWEEN_ALLOW_LOOPBACK_ADDRESSES="true",
                   BITWEEN_API_PORT="0", BITWEEN_LOG_LEVEL="info",
                   BITWEEN_STATE_CACHE_MB="0")  # tests change stored rows behind its back
        env.update(extra)
        self.log = open(self.log_path, "a")
        start = self.log.tell()
        self.proc = subprocess.Popen([self.binary], env=env, stdout=self.log, stderr=self.log)

        def up():
            with open(self.log_path) as f:
                f.seek(start)
                return "registration re-check finished" in f.read()
        ok = wait_for(30, up)
        if not ok:
            raise SystemExit("component did not start:\n" + open(self.log_path).read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


def stack_agent(binary, work, user, resource, **extra):
    """An agent of `user`@the stack's domain on device `resource`; `extra`
    settings (BITWEEN_AGENT_ names without the prefix, lower case)."""
    env = {
        "BITWEEN_AGENT_JID": "%s@%s" % (user, os.environ["BITWEEN_STACK_DOMAIN"]),
        "BITWEEN_AGENT_PASSWORD": "pw-" + user,
        "BITWEEN_AGENT_RESOURCE": resource,
        "BITWEEN_AGENT_XMPP_HOST": "127.0.0.1",
        "BITWEEN_AGENT_XMPP_PORT": os.environ["BITWEEN_STACK_C2S_PORT"],
        "BITWEEN_AGENT_XMPP_TLS": "disabled",
        "BITWEEN_AGENT_COMPONENT_JID": os.environ["BITWEEN_COMPONENT_JID"],
        "BITWEEN_AGENT_ALLOW_LOOPBACK_ADDRESSES": "true",
        "BITWEEN_AGENT_RECONNECT_MIN_MS": "200",
        "BITWEEN_AGENT_RECONNECT_MAX_MS": "2000",
        "BITWEEN_AGENT_DOWNLOAD_DIR": os.path.join(work, "%s-%s.downloads" % (user, resource)),
    }
    env.update({"BITWEEN_AGENT_" + k.upper(): str(v) for k, v in extra.items()})
    return Agent(binary, work, "%s-%s" % (user, resource), env)


def infohash(infohash_py, torrent, parent):
    """The info-hash of `torrent`, its pieces checked against the data under
    `parent`, as tests/support/infohash.py computes them; "error: ..." when
    a piece differs."""
    p = subprocess.run([sys.executable, infohash_py, torrent, parent], capture_output=True,
                       text=True)
    return p.stdout.strip() if p.returncode == 0 else "error: " + p.stderr.strip()[-300:]
