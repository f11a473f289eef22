// The dashboard in a real browser: Debian's headless chromium (driven by playwright-core from
// npm, no browser download) against the real `elasticproxy run` and the real HAProxy on
// loopback, with the file source. Each test starts its own HAProxy + daemon in a fresh folder.
//
// Environment: EP_BINARY (the elasticproxy binary, required), EP_CONSUL_DOUBLE (the Consul
// double, tests/support/consul, for the hostile-strings test), EP_ARTIFACTS (where screenshots
// and timings go; default ./artifacts), EP_HAPROXY (the HAProxy binary, as for the C++ tests; default haproxy), CHROMIUM (default
// /usr/bin/chromium), EP_TEST_TIME_SCALE (multiplies every wait, as in the C++ tests).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BINARY = process.env.EP_BINARY;
const HAPROXY = process.env.EP_HAPROXY || 'haproxy';
const CONSUL_DOUBLE = process.env.EP_CONSUL_DOUBLE;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.EP_ARTIFACTS || 'artifacts');
const SCALE = Number(process.env.EP_TEST_TIME_SCALE || '1') || 1;
const scaled = (ms) => Math.round(ms * SCALE);
const timings = {};

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Polls `pred` (sync or async) until it returns truthy or `ms` (scaled) pass.
async function eventually(pred, ms = 15000, what = 'condition') {
  const deadline = Date.now() + scaled(ms);
  let last;
  for (;;) {
    try { last = await pred(); } catch (e) { last = undefined; }
    if (last) return last;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(25);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

function writeAtomic(file, text) {
  fs.writeFileSync(file + '.tmp', text);
  fs.renameSync(file + '.tmp', file);
}

function admin(socket, command) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let out = '';
    c.on('connect', () => c.write(command + '\n'));
    c.on('data', (d) => { out += d; });
    c.on('end', () => resolve(out));
    c.on('error', reject);
    // A CLI that waits for us (the master CLI without `quit`) must not hang the test.
    c.setTimeout(scaled(10000), () => { c.destroy(); reject(new Error('no answer to ' + command)); });
  });
}

async function serversIn(socket, backend) {
  const text = await admin(socket, 'show servers state ' + backend);
  return text.split('\n').filter((l) => /^\d+ /.test(l)).map((l) => l.split(' ')[3]).filter(Boolean).sort();
}

const targets = (ports) => JSON.stringify([{ targets: ports.map((p) => '127.0.0.1:' + p) }]) + '\n';

// A real HAProxy and a real daemon. `backends`: [{name, file, targets: [ports] | raw json,
// safety}], `metrics`: extra lines under metrics:, `env`: extra environment for the daemon.
class Stack {
  constructor(name) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ep-browser-' + name + '-'));
    this.socket = path.join(this.dir, 'admin.sock');
    this.procs = [];
  }

  async start({ backends, metrics = '', env = {}, timeout = '5s' }) {
    this.port = await freePort();
    this.origin = 'http://127.0.0.1:' + this.port;
    const fe = await freePort();
    this.frontend = fe;
    let cfg = 'global\n  stats socket ' + this.socket + ' level admin\n' +
      'defaults\n  mode http\n  timeout connect 1s\n  timeout client ' + timeout + '\n  timeout server ' + timeout + '\n' +
      'frontend fe\n  bind 127.0.0.1:' + fe + '\n  default_backend ' + backends[0].name + '\n';
    let ep = 'haproxy:\n  sockets: [' + this.socket + ']\n  timeout: 2s\nbackends:\n';
    for (const b of backends) {
      cfg += 'backend ' + b.name + '\n  balance roundrobin\n';
      ep += '  - name: ' + b.name + '\n    drain_timeout: ' + (b.drain_timeout || '0s') +
        (b.server_options ? '\n    server_options: ' + JSON.stringify(b.server_options) : '') + '\n    safety: ' +
        (b.safety || '{max_remove_fraction: 1.0}') + '\n    sources:\n';
      if (b.consul) {  // a Consul source: {service, address, token}
        ep += '      - consul: {service: ' + JSON.stringify(b.consul.service) +
          ', address: ' + JSON.stringify('http://' + b.consul.address) +
          (b.consul.token ? ', token: ' + JSON.stringify(b.consul.token) : '') + '}\n';
      }
      if (b.targets) {  // a file source
        const file = path.join(this.dir, b.file || b.name + '.json');
        fs.mkdirSync(path.dirname(file), { recursive: true });
        writeAtomic(file, typeof b.targets === 'string' ? b.targets : targets(b.targets));
        ep += '      - file: {path: ' + JSON.stringify(file) + '}\n';
      }
    }
    ep += 'metrics:\n  listen: "127.0.0.1:' + this.port + '"\n' + metrics;
    fs.writeFileSync(path.join(this.dir, 'haproxy.cfg'), cfg);
    fs.writeFileSync(path.join(this.dir, 'elasticproxy.yaml'), ep);
    this.spawn(HAPROXY, ['-db', '-f', path.join(this.dir, 'haproxy.cfg')], 'haproxy.log', {});
    await eventually(async () => (await admin(this.socket, 'show info')).includes('Pid'), 15000, 'HAProxy');
    this.spawn(BINARY, ['run', '-c', path.join(this.dir, 'elasticproxy.yaml'), '--lock-file',
      path.join(this.dir, 'ep.lock')], 'ep.log', env);
    await eventually(async () => (await fetch(this.origin + '/healthz')).status === 200, 20000, 'the daemon');
  }

  spawn(cmd, args, log, env) {
    const out = fs.openSync(path.join(this.dir, log), 'a');
    const p = spawn(cmd, args, { stdio: ['ignore', out, out], env: { ...process.env, ...env } });
    fs.closeSync(out);
    this.procs.push(p);
    return p;
  }

  file(name) { return path.join(this.dir, name); }
  log() { try { return fs.readFileSync(path.join(this.dir, 'ep.log'), 'utf8').slice(-4000); } catch { return ''; } }

  async stop() {
    for (const p of this.procs.reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([gone, sleep(scaled(10000))]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// The Consul double (tests/support/consul) as a process: its address once it listens.
async function startConsul(stack, env = {}) {
  assert.ok(CONSUL_DOUBLE && fs.existsSync(CONSUL_DOUBLE), 'EP_CONSUL_DOUBLE must name the ep_consul_double binary');
  const p = spawn(CONSUL_DOUBLE, [], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  stack.procs.push(p);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  await eventually(() => out.includes('\n'), 10000, 'the Consul double');
  return out.trim();
}

// Registers a service with the Consul double, as an agent would be told to.
async function registerService(address, service, token) {
  const r = await fetch('http://' + address + '/v1/agent/service/register', {
    method: 'PUT', body: JSON.stringify(service), headers: token ? { 'X-Consul-Token': token } : {},
  });
  assert.equal(r.status, 200, await r.text());
}

let browser;
let profile;

before(async () => {
  assert.ok(BINARY && fs.existsSync(BINARY), 'EP_BINARY must name the elasticproxy binary');
  assert.ok(fs.existsSync(CHROMIUM), CHROMIUM + ' is missing: apt-get install chromium chromium-driver (scripts/install-deps.sh)');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ep-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  if (browser) await browser.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  fs.writeFileSync(path.join(ARTIFACTS, 'timings.json'), JSON.stringify(timings, null, 2) + '\n');
  console.log('timings: ' + JSON.stringify(timings));
});

// A fresh page that records every request and every console error.
async function openPage(origin) {
  const page = await browser.newPage();
  page.requests = [];
  page.errors = [];
  page.on('request', (r) => page.requests.push(r.url()));
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  return page;
}

function assertSameOrigin(page, origin) {
  for (const u of page.requests) assert.ok(u.startsWith(origin + '/'), 'request left the origin: ' + u);
}

const rowsOf = (page, backend) => page.locator('#backend-list [data-backend="' + backend + '"] tbody tr');

test('renders each backend and server from a real daemon and HAProxy, then follows a discovery change', async () => {
  const s = new Stack('render');
  try {
    await s.start({ backends: [{ name: 'web', targets: [9001, 9002] }, { name: 'api', targets: [9101] }] });
    const page = await openPage(s.origin);
    await page.goto(s.origin + '/');
    await eventually(async () => (await rowsOf(page, 'web').count()) === 2, 10000, 'web rows');
    await eventually(async () => (await rowsOf(page, 'api').count()) === 1, 10000, 'api rows');
    // The rows exist as soon as discovery delivers (MISSING until HAProxy has the servers): wait
    // for the daemon to have applied them.
    await eventually(async () => (await rowsOf(page, 'web').allTextContents()).every((t) => /UP w1/.test(t)), 10000, 'web servers UP');
    const web = await rowsOf(page, 'web').allTextContents();
    assert.match(web[0], /ep-127\.0\.0\.1:9001/);
    assert.match(web[0], /UP w1/);
    assert.match(web[1], /ep-127\.0\.0\.1:9002/);
    // The HAProxy instance: reachable, its version, pid, uptime and the backends' update mode.
    const inst = await page.locator('#instance-rows').textContent();
    const info = await admin(s.socket, 'show info');
    assert.match(inst, /REACHABLE/);
    assert.ok(inst.includes(/^Version: (\S+)/m.exec(info)[1]), inst);
    assert.ok(inst.includes(/^Pid: (\d+)/m.exec(info)[1]), inst);
    assert.match(inst, /\d+m/);  // uptime
    assert.match(inst, /2 dynamic/);
    assert.match(await page.locator('#source-rows').textContent(), /HEALTHY/);
    assert.equal(await page.locator('#hook-none').isVisible(), true); // no AWS source: none in flight
    await eventually(async () => /READY/.test(await page.locator('#summary').textContent()), 10000, 'READY');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    // Page weight: every byte the page loaded but its data (/status), i.e. what the binary serves.
    let weight = 0;
    for (const u of new Set(page.requests)) {
      if (!u.includes('/status')) weight += (await (await fetch(u)).arrayBuffer()).byteLength;
    }
    timings.page_weight_bytes = weight;
    timings.page_requests = [...new Set(page.requests)].filter((u) => !u.includes('/status')).map((u) => u.slice(s.origin.length)).sort();
    assert.ok(weight <= 150 * 1024, 'page weight ' + weight + ' bytes');

    // Discovery changes: a third server. Measured from the file write to the row on the page.
    const t0 = Date.now();
    writeAtomic(s.file('web.json'), targets([9001, 9002, 9003]));
    await eventually(async () => (await rowsOf(page, 'web').count()) === 3, 10000, 'the new row');
    // The 2 s: the change is on the page (its row) within 2 s of the file write.
    timings.discovery_change_to_row_ms = Date.now() - t0;
    assert.ok(timings.discovery_change_to_row_ms < scaled(2000), 'the row took ' + timings.discovery_change_to_row_ms + ' ms');
    await eventually(async () => /ep-127\.0\.0\.1:9003.*UP/.test((await rowsOf(page, 'web').allTextContents()).join('|')), 10000, 'UP in HAProxy');
    timings.discovery_change_to_page_ms = Date.now() - t0;
    // Until HAProxy's health check has it UP too (the check's interval adds to it).
    assert.ok(timings.discovery_change_to_page_ms < scaled(5000), 'update took ' + timings.discovery_change_to_page_ms + ' ms');
    assert.deepEqual(await serversIn(s.socket, 'web'), ['ep-127.0.0.1:9001', 'ep-127.0.0.1:9002', 'ep-127.0.0.1:9003']);
    // The change is on the timeline with its latency, and counted in the summary.
    await eventually(async () => /web\s*ep-127\.0\.0\.1:9003\s*add\s*new in discovery\s*OK\s*\d+ ms/.test(await page.locator('#timeline-rows').textContent()), 10000, 'the timeline row');
    assert.match(await page.locator('#conv-summary').textContent(), /Last 60 min: 4 change\(s\)/);
    await eventually(async () => page.evaluate(() => window.epChartDraws >= 1), 5000, 'the chart drawn');

    // Per source: snapshots published, errors among them, events in the last minute.
    const webSource = page.locator('#source-rows tr[data-backend="web"]');
    await eventually(async () => Number(await webSource.locator('.src-events').textContent()) >= 2, 10000, 'web: 2 events in the last minute');
    assert.match(await webSource.locator('.src-errors').textContent(), /^0 of [2-9]\d*$/);
    // A broken file is a failed snapshot: counted, the last good set kept.
    const apiSource = page.locator('#source-rows tr[data-backend="api"]');
    writeAtomic(s.file('api.json'), '{"not": json');
    await eventually(async () => /^1 of \d+$/.test(await apiSource.locator('.src-errors').textContent()), 10000, 'api: 1 error counted');
    assert.match(await apiSource.textContent(), /FAILING/);
    assert.match(await apiSource.textContent(), /api\.json/);  // the last error names the file
    assert.deepEqual(await serversIn(s.socket, 'api'), ['ep-127.0.0.1:9101']);

    // A link per backend.
    assert.equal(await page.locator('#b-web h3 a').getAttribute('href'), '#b-web');
    assert.equal(await page.locator('#b-api h3 a').getAttribute('href'), '#b-api');
    // The timeline filtered, from the keyboard: only api's change is left.
    await page.focus('#timeline-filter');
    await page.keyboard.type('127.0.0.1:9101');
    assert.equal(await page.locator('#timeline-rows tr:not([hidden])').count(), 1);
    assert.match(await page.locator('#timeline-rows tr:not([hidden])').textContent(), /^\S+\s*api\s*ep-127\.0\.0\.1:9101\s*add/);
    assert.match(await page.locator('#timeline-count').textContent(), /^1 of \d+ /);
    // Filter by backend name, keyboard only.
    await page.focus('#filter');
    await page.keyboard.type('api');
    assert.equal(await page.locator('#backend-list [data-backend="web"]').isHidden(), true);
    assert.equal(await page.locator('#backend-list [data-backend="api"]').isVisible(), true);
    // A narrow window (a phone, a split screen): nothing wider than the window but the tables'
    // own scroll boxes; the page does not scroll sideways.
    await page.setViewportSize({ width: 380, height: 800 });
    await eventually(async () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 5000, 'no sideways scroll at 380 px');
    await page.screenshot({ path: path.join(ARTIFACTS, 'narrow.png'), fullPage: true });
    assertSameOrigin(page, s.origin);
    assert.deepEqual(page.errors, []);
    await page.close();
  } catch (e) {
    e.message += '\n--- daemon log ---\n' + s.log();
    throw e;
  } finally {
    await s.stop();
  }
});

test('hostile discovery strings are shown as text and never executed; no secret reaches the page', async () => {
  const s = new Stack('hostile');
  const consulToken = 'consul-acl-canary-' + process.pid;
  try {
    // Through Consul (its double, over HTTP like a real agent): a service name, tags and meta
    // values carrying markup, and a secret-looking meta key; Consul's ACL token is configured.
    const consul = await startConsul(s, { EP_CONSUL_ACL_TOKEN: consulToken });
    const service = '"><img src=x onerror="window.__xss=5">';  // no '/': a valid service name
    await registerService(consul, {
      ID: 'db-1', Name: service, Address: '127.0.0.1', Port: 9201,
      Tags: ['<script>window.__xss=6</script>', '"><img src=x onerror=window.__xss=7>'],
      Meta: { version: '<img src=x onerror="window.__xss=8">', db_password: 'meta-secret-' + process.pid },
    }, consulToken);
    // Through the file source: the source's description carries the file path, and rejected
    // endpoints are shown with their (escaped) text.
    const payloadDir = '<script>window.__xss=1<';
    await s.start({ backends: [
      { name: 'web', file: payloadDir + '/script>.json', targets: [9001] },
      { name: 'api', file: '"><img src=x onerror="window.__xss=2">.json',
        targets: JSON.stringify([{ targets: ['127.0.0.1:9101', '"><img src=x onerror=window.__xss=3>:80',
          '<script>window.__xss=4</script>:80'] }]) },
      { name: 'db', consul: { service, address: consul, token: consulToken }, targets: [9202] },
    ] });
    const page = await openPage(s.origin);
    await page.goto(s.origin + '/');
    await eventually(async () => (await rowsOf(page, 'api').count()) === 1, 10000, 'api rows');
    await eventually(async () => (await rowsOf(page, 'db').count()) === 2, 10000, 'db rows (Consul and a file)');
    const sources = await page.locator('#source-rows').textContent();
    assert.ok(sources.includes('<script>window.__xss=1</script>.json'), sources);
    assert.ok(sources.includes('"><img src=x onerror="window.__xss=2">.json'), sources);
    assert.ok(sources.includes('<img src=x onerror=window.__xss=3>'), sources);
    assert.ok(sources.includes('<script>window.__xss=4</script>'), sources);
    assert.match(sources, /2 rejected: .*address contains whitespace.*address is not an IPv4 or IPv6 literal/);
    assert.ok(sources.includes('consul ' + service + ' at'), sources);  // the service name
    // Consul's service name, tags and meta on the server's row, as text.
    const db = (await rowsOf(page, 'db').allTextContents()).join('|');
    assert.ok(db.includes('consul.service=' + service), db);
    assert.ok(db.includes('consul.tags=<script>window.__xss=6</script>,"><img src=x onerror=window.__xss=7>'), db);
    assert.ok(db.includes('consul.meta.version=<img src=x onerror="window.__xss=8">'), db);
    assert.ok(db.includes('consul.meta.db_password=***'), db);
    // Two sources: each server's row says which one gives it.
    const fromFile = await rowsOf(page, 'db').filter({ hasText: 'ep-127.0.0.1:9202' }).locator('.from').textContent();
    assert.match(fromFile, /^file .*db\.json$/);
    const fromConsul = await rowsOf(page, 'db').filter({ hasText: 'ep-db-1' }).locator('.from').textContent();
    assert.ok(fromConsul.startsWith('consul ' + service + ' at http://127.0.0.1:'), fromConsul);
    // No element came out of the strings, and the flag stays unset over two more renders
    // (the page re-renders each second: "last success" changes).
    assert.equal(await page.locator('img, script:not([src])').count(), 0);
    const n = await page.evaluate(() => window.epRendered);
    await eventually(async () => page.evaluate((k) => window.epRendered >= k + 2, n), 10000, 'two more renders');
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    // Neither Consul's token nor the secret meta value is on the page or in /status.
    const status = await page.evaluate(async () => (await fetch('/status')).text());
    for (const secret of [consulToken, 'meta-secret-' + process.pid]) {
      assert.ok(!status.includes(secret), secret + ' in /status');
      assert.ok(!(await page.content()).includes(secret), secret + ' on the page');
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'hostile.png'), fullPage: true });

    // Lifecycle hooks in flight (an aws_asg source with lifecycle_hook; its AWS side is tested in
    // aws_lifecycle_test): the page renders what /status says, hostile hook names included. The
    // daemon's /status is handed to the page with one hook added to the db source.
    await page.route('**/status?compact', async (route) => {
      const r = await route.fetch();
      const j = await r.json();
      j.backends.find((b) => b.backend === 'db').sources[0].hooks_in_flight = [{
        instance: 'i-0abc<script>window.__xss=9</script>', hook: '"><img src=x onerror=window.__xss=10>',
        transition: 'autoscaling:EC2_INSTANCE_TERMINATING', progress: '2 session(s), active on 0 of 1 HAProxy',
        since_seconds_ago: 20, deadline_in_seconds: 280.4, next_heartbeat_in_seconds: 39.6 }];
      await route.fulfill({ response: r, body: JSON.stringify(j) });
    });
    const hookRow = page.locator('#hook-rows tr');
    await eventually(async () => (await hookRow.count()) === 1, 10000, 'the hook in flight');
    const hookText = await hookRow.textContent();
    for (const want of ['db', 'i-0abc<script>window.__xss=9</script>', '"><img src=x onerror=window.__xss=10>', 'TERMINATING',
      '2 session(s), active on 0 of 1 HAProxy', '20 s ago', '280 s', '40 s']) {
      assert.ok(hookText.includes(want), want + ' not in ' + hookText);
    }
    assert.equal(await page.locator('#hook-none').isHidden(), true);
    assert.equal(await page.locator('img, script:not([src])').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    await page.screenshot({ path: path.join(ARTIFACTS, 'hooks-in-flight.png'), fullPage: true });
    await page.unroute('**/status?compact');
    assertSameOrigin(page, s.origin);
    await page.close();
  } catch (e) {
    e.message += '\n--- daemon log ---\n' + s.log();
    throw e;
  } finally {
    await s.stop();
  }
});

// A TCP server that accepts and never answers: each request through HAProxy to it stays a
// session (until `timeout server`), so a drain has sessions left.
function silentServer() {
  return new Promise((resolve, reject) => {
    const sockets = [];
    const srv = net.createServer((c) => { sockets.push(c); c.on('error', () => {}); });
    srv.listen(0, '127.0.0.1', () => resolve({
      port: srv.address().port,
      close: () => { sockets.forEach((c) => c.destroy()); srv.close(); },
    }));
    srv.on('error', reject);
  });
}

test('a draining server shows its sessions and the time to drain_timeout; a health-gated one says so; an operator\'s MAINT is shown as theirs', async () => {
  const s = new Stack('drain');
  const a = await silentServer(), b = await silentServer();
  const clients = [];
  try {
    // `gated`: a server with health checks on a port nothing listens on: held in DRAIN behind
    // its health gate for good.
    const closed = await freePort();
    await s.start({ backends: [{ name: 'web', targets: [a.port, b.port], drain_timeout: '120s' },
      { name: 'gated', targets: [closed], server_options: 'check inter 300ms' }], timeout: '300s' });
    const page = await openPage(s.origin);
    await page.goto(s.origin + '/');
    const nameA = 'ep-127.0.0.1:' + a.port, nameB = 'ep-127.0.0.1:' + b.port;
    await eventually(async () => /HEALTH-GATED \(DRAIN until its first health check passes\)/.test(
      (await rowsOf(page, 'gated').allTextContents()).join('|')), 10000, 'the health-gated server');
    // Its server comes up: the gate opens (UP); it dies: DOWN, marked as differing.
    const gatedRows = async () => (await rowsOf(page, 'gated').allTextContents()).join('|');
    const late = net.createServer((c) => c.destroy());
    await new Promise((r) => late.listen(closed, '127.0.0.1', r));
    await eventually(async () => /UP w1/.test(await gatedRows()), 15000, 'the gated server UP');
    // HAProxy's own change (3 failed checks 300 ms apart) reaches the page at its next polls:
    // reading /status asks the daemon for a fresh read (at most one a second), not the 10 s resync.
    const t0 = Date.now();
    await new Promise((r) => late.close(r));
    await eventually(async () => /DOWN w1/.test(await gatedRows()), 15000, 'the gated server DOWN');
    timings.haproxy_down_to_page_ms = Date.now() - t0;
    assert.ok(timings.haproxy_down_to_page_ms < scaled(6000), 'DOWN took ' + timings.haproxy_down_to_page_ms + ' ms');
    assert.equal(await rowsOf(page, 'gated').locator('.bad').count(), 1);
    assert.match(await page.locator('#backend-list [data-backend="gated"] h3').textContent(), /DIFFERS/);
    await eventually(async () => (await rowsOf(page, 'web').allTextContents()).filter((r) => /UP w1/.test(r)).length === 2, 10000, 'both servers UP');
    // Requests that stay open: round robin gives each server some.
    for (let i = 0; i < 4; i++) {
      const c = net.createConnection(s.frontend, '127.0.0.1');
      c.on('error', () => {});
      c.on('connect', () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      clients.push(c);
    }
    await eventually(async () => /scur/.test(await admin(s.socket, 'show stat')) &&
      (await admin(s.socket, 'show stat')).split('\n').some((l) => l.startsWith('web,' + nameB + ',') && Number(l.split(',')[4]) > 0), 10000, 'sessions on ' + nameB);

    // Discovery drops b: it drains (sessions left), timed against drain_timeout (120 s).
    writeAtomic(s.file('web.json'), targets([a.port]));
    const rowB = () => rowsOf(page, 'web').filter({ hasText: nameB });
    await eventually(async () => /DRAIN, \d+ sessions?, \d+s to drain_timeout/.test(await rowB().textContent()), 10000, 'DRAIN with the time left');
    const m = /DRAIN, (\d+) sessions?, (\d+)s to drain_timeout/.exec(await rowB().textContent());
    assert.ok(Number(m[1]) >= 1, 'sessions left: ' + m[1]);
    assert.ok(Number(m[2]) > 60 && Number(m[2]) <= 120, 'time to drain_timeout: ' + m[2]);
    const status = JSON.parse(await page.evaluate(async () => (await fetch('/status')).text()));
    const srv = status.instances[0].backends[0].actual_servers.find((x) => x.name === nameB);
    assert.equal(srv.state, 'drain');
    assert.ok(srv.drain_since_seconds_ago >= 0 && srv.drain_deadline_in_seconds <= 120, JSON.stringify(srv));

    // An operator puts a (still desired) server in maintenance: left alone, and shown as theirs.
    const rowA = () => rowsOf(page, 'web').filter({ hasText: nameA });
    await admin(s.socket, 'disable server web/' + nameA);
    await eventually(async () => /MAINT \(set by operator, left alone\)/.test(await rowA().textContent()), 10000, "the operator's MAINT");
    assert.equal(await rowA().locator('.opmaint').count(), 1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'drain-and-operator-maint.png'), fullPage: true });
    // The operator enables it again: UP, managed again.
    await admin(s.socket, 'enable server web/' + nameA);
    await eventually(async () => /UP w1/.test(await rowA().textContent()), 10000, 'UP again');
    assert.equal(await rowA().locator('.opmaint').count(), 0);
    assertSameOrigin(page, s.origin);
    assert.deepEqual(page.errors, []);
    await page.close();
  } catch (e) {
    e.message += '\n--- daemon log ---\n' + s.log();
    throw e;
  } finally {
    clients.forEach((c) => c.destroy());
    a.close(); b.close();
    await s.stop();
  }
});

test('config mode: the HAProxy instance shows its last reload and the result, a failed one with HAProxy\'s words', async () => {
  const s = new Stack('config');
  try {
    s.port = await freePort();
    s.origin = 'http://127.0.0.1:' + s.port;
    const fe = await freePort();
    const master = s.file('master.sock'), cfg = s.file('haproxy.cfg');
    const head = 'global\n  stats socket ' + s.socket + ' level admin\n' +
      'defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n' +
      'frontend fe\n  bind 127.0.0.1:' + fe + '\n  default_backend web\nbackend web\n  balance roundrobin\n';
    fs.writeFileSync(cfg, head);
    // The operator pins some traffic to one server by name: a config without that server is
    // rejected by `haproxy -c` (a failed reload, HAProxy's words on the page).
    fs.writeFileSync(s.file('haproxy.cfg.tmpl'), head + '  use-server ep-127.0.0.1:9002 if FALSE\n  {{ servers "web" }}\n');
    writeAtomic(s.file('web.json'), targets([9001, 9002]));
    fs.writeFileSync(s.file('elasticproxy.yaml'), 'haproxy:\n  sockets: [' + s.socket + ']\n  binary: ' + HAPROXY +
      '\n  master_socket: ' + master + '\n  config: ' + cfg + '\n  template: ' + s.file('haproxy.cfg.tmpl') +
      '\n  timeout: 2s\n  update: config\n  reload: {quiet: 200ms, max_wait: 1s, min_interval: 200ms, timeout: 10s}\n' +
      'backends:\n  - name: web\n    sources:\n      - file: {path: ' + JSON.stringify(s.file('web.json')) + '}\n' +
      'metrics:\n  listen: "127.0.0.1:' + s.port + '"\n');
    s.spawn(HAPROXY, ['-W', '-db', '-f', cfg, '-S', master], 'haproxy.log', {});
    await eventually(async () => (await admin(s.socket, 'show info')).includes('Pid'), 15000, 'HAProxy');
    await eventually(async () => (await admin(master, 'show proc;quit')).includes('master'), 15000, 'the master CLI');
    s.spawn(BINARY, ['run', '-c', s.file('elasticproxy.yaml'), '--lock-file', s.file('ep.lock')], 'ep.log', {});
    await eventually(async () => (await fetch(s.origin + '/healthz')).status === 200, 20000, 'the daemon');

    const page = await openPage(s.origin);
    await page.goto(s.origin + '/');
    const reload = page.locator('#instance-rows .reload');
    await eventually(async () => /config mode: OK \d+ s ago/.test(await reload.textContent()), 15000, 'the reload on the page');
    const before = /(\d+) reload\(s\) ok/.exec(await reload.textContent())[1];
    // A discovery change in config mode is a reload: counted, with its result.
    writeAtomic(s.file('web.json'), targets([9001, 9002, 9003]));
    await eventually(async () => (await serversIn(s.socket, 'web')).length === 3, 15000, 'HAProxy reloaded with 3 servers');
    await eventually(async () => Number(/(\d+) reload\(s\) ok/.exec(await reload.textContent())[1]) > Number(before), 10000, 'one more reload');
    assert.match(await reload.textContent(), /config mode: OK/);
    let status = JSON.parse(await page.evaluate(async () => (await fetch('/status')).text()));
    assert.equal(status.instances[0].config.mode, 'config');
    assert.equal(status.instances[0].config.last_reload.result, 'ok');
    await page.screenshot({ path: path.join(ARTIFACTS, 'config-mode-reload.png'), fullPage: true });

    // Discovery drops the pinned server: `haproxy -c` rejects the candidate. The page says so,
    // with HAProxy's own words; HAProxy keeps running the last good config.
    const ok = /(\d+) reload\(s\) ok/.exec(await reload.textContent())[1];
    writeAtomic(s.file('web.json'), targets([9001, 9003]));
    await eventually(async () => /config mode: REJECTED \d+ s ago/.test(await reload.textContent()), 15000, 'the failed reload on the page');
    const failed = await reload.textContent();
    assert.match(failed, /unable to find server 'ep-127\.0\.0\.1:9002' referenced in a 'use-server' rule/);
    assert.ok(failed.includes(ok + ' reload(s) ok'), failed);  // not counted as a reload
    assert.equal(await reload.getAttribute('class'), 'reload bad');  // marked, not only by colour
    status = JSON.parse(await page.evaluate(async () => (await fetch('/status')).text()));
    assert.equal(status.instances[0].config.last_reload.result, 'rejected');
    assert.deepEqual(await serversIn(s.socket, 'web'), ['ep-127.0.0.1:9001', 'ep-127.0.0.1:9002', 'ep-127.0.0.1:9003']);
    // In config mode the changes are reloads: on the timeline too, the failed one with its words.
    const timeline = await page.locator('#timeline-rows').textContent();
    assert.match(timeline, /\*\s*-\s*reload\s*update: config\s*FAILED: rejected: [\s\S]*unable to find server 'ep-127\.0\.0\.1:9002'/);
    assert.match(timeline, /\*\s*-\s*reload\s*update: config\s*OK\s*\d/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'config-mode-reload-failed.png'), fullPage: true });
    assertSameOrigin(page, s.origin);
    assert.deepEqual(page.errors, []);
    await page.close();
  } catch (e) {
    e.message += '\n--- daemon log ---\n' + s.log();
    throw e;
  } finally {
    await s.stop();
  }
});

test('a held snapshot is confirmed from the page with the token, and refused without', async () => {
  const s = new Stack('hold');
  const token = 'browser-test-token-' + process.pid;
  try {
    await s.start({
      backends: [{ name: 'web', targets: [9001, 9002, 9003, 9004], safety: '{max_remove_fraction: 0.3, confirm_after: 1h}' },
        { name: 'api', targets: [9101], safety: '{confirm_after: 1h}' }],
      metrics: '  token_env: EP_DASHBOARD_TOKEN\n',
      env: { EP_DASHBOARD_TOKEN: token },
    });
    // Without the token: the page is the token form, /status and the action are refused.
    assert.equal((await fetch(s.origin + '/status')).status, 401);
    const page = await openPage(s.origin);
    const first = await page.goto(s.origin + '/');
    assert.equal(first.status(), 401);
    await page.screenshot({ path: path.join(ARTIFACTS, 'token-form.png') });
    await page.fill('#token', token);
    await page.keyboard.press('Enter');
    await eventually(async () => (await rowsOf(page, 'web').count()) === 4, 10000, 'web rows');

    writeAtomic(s.file('web.json'), targets([9001])); // removes 3 of 4: held for an hour
    const hold = page.locator('#hold-list .hold[data-backend="web"]');
    await eventually(async () => (await hold.count()) === 1, 10000, 'the hold on the page');
    const text = await hold.textContent();
    assert.match(text, /HELD \(shrink\)/);
    assert.match(text, /ep-127\.0\.0\.1:9004/);
    assert.match(text, /confirm_after applies it in/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'held.png'), fullPage: true });

    // The action without the token (or without the CSRF header) changes nothing.
    const bare = await fetch(s.origin + '/api/guard/confirm?backend=web', { method: 'POST', headers: { 'X-ElasticProxy-Action': '1' } });
    assert.equal(bare.status, 401);
    const noHeader = await fetch(s.origin + '/api/guard/confirm?backend=web', { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
    assert.equal(noHeader.status, 403);
    assert.equal((await serversIn(s.socket, 'web')).length, 4);

    // From the keyboard: Tab order reaches the button, Enter presses it.
    await hold.locator('button.confirm').focus();
    await page.keyboard.press('Enter');
    await eventually(async () => /confirmed/.test(await page.locator('#action-result').textContent()), 10000, 'the confirmation');
    await eventually(async () => (await serversIn(s.socket, 'web')).length === 1, 10000, 'HAProxy down to 1 server');
    await eventually(async () => (await page.locator('#hold-list .hold').count()) === 0, 10000, 'the hold gone');
    await eventually(async () => (await rowsOf(page, 'web').count()) === 1, 10000, 'one row');
    await page.screenshot({ path: path.join(ARTIFACTS, 'confirmed.png'), fullPage: true });

    // An empty set is held too; the operator rejects it from the page: HAProxy keeps its server.
    writeAtomic(s.file('api.json'), '[]\n');
    const emptyHold = page.locator('#hold-list .hold[data-backend="api"]');
    await eventually(async () => (await emptyHold.count()) === 1, 10000, 'the empty hold on the page');
    assert.match(await emptyHold.textContent(), /HELD \(empty\)[\s\S]*ep-127\.0\.0\.1:9101/);
    await emptyHold.locator('button.reject').focus();
    await page.keyboard.press('Enter');
    await eventually(async () => /^rejected: the held set of 0 server\(s\); backend api now has 1/.test(await page.locator('#action-result').textContent()), 10000, 'the rejection');
    await eventually(async () => (await emptyHold.count()) === 0, 10000, 'the empty hold gone');
    assert.deepEqual(await serversIn(s.socket, 'api'), ['ep-127.0.0.1:9101']);
    // The token is nowhere in what the page received.
    const status = await page.evaluate(async () => (await fetch('/status')).text());
    assert.ok(!status.includes(token));
    assert.ok(!(await page.content()).includes(token));
    assertSameOrigin(page, s.origin);
    await page.close();
  } catch (e) {
    e.message += '\n--- daemon log ---\n' + s.log();
    throw e;
  } finally {
    await s.stop();
  }
});

test('first render with 1,000 backends x 10 servers (measured, reported)', async () => {
  const s = new Stack('scale');
  try {
    const backends = [];
    for (let b = 0; b < 1000; b++) {
      const ports = [];
      for (let i = 0; i < 10; i++) ports.push(20000 + b * 10 + i);
      backends.push({ name: 'be' + b, targets: ports });
    }
    await s.start({ backends });
    // Wait until the daemon converged on all 10,000 servers before measuring the page.
    await eventually(async () => (await fetch(s.origin + '/readyz')).status === 200, 240000, 'convergence on 10,000 servers');
    const page = await openPage(s.origin);
    await page.goto(s.origin + '/');
    await eventually(async () => page.evaluate(() => window.epComplete >= 1), 60000, 'the whole first render');
    const m = await page.evaluate(() => {
      const st = performance.getEntriesByType('resource').find((r) => r.name.includes('/status')) || {};
      return {
        // navigation start -> the top of the page (summary, HAProxy, guard, sources, the first
        // backends, timeline, chart) is in the DOM
        first_render_ms: performance.getEntriesByName('ep-first-render')[0].startTime,
        // navigation start -> all 1,000 backends' 10,000 rows are in the DOM
        complete_render_ms: performance.getEntriesByName('ep-complete-render')[0].startTime,
        status_parsed_ms: performance.getEntriesByName('ep-status-parsed')[0].startTime,
        first_render_only_ms: performance.getEntriesByName('ep-render')[0].duration,
        status_server_ms: st.responseStart - st.requestStart,
        status_download_ms: st.responseEnd - st.responseStart,
        status_bytes: st.transferSize,
        rows: document.querySelectorAll('#backend-list tbody tr').length,
        phases: window.epPhases,
      };
    });
    timings.scale_1000x10 = m;
    console.log('1,000 x 10: ' + JSON.stringify(m));
    // A poll that brings changed states (the daemon may still settle sessions/states after
    // /readyz) rebuilds the backends in slices: wait for the page to hold every row again.
    if (m.rows !== 10000) {
      await eventually(async () => page.evaluate(() => document.querySelectorAll('#backend-list tbody tr').length === 10000), 30000, '10,000 rows');
    }
    // Not a timing gate (a shared, loaded machine): a very generous bound only catches a
    // pathological regression; the 300 ms target is checked by reading the number.
    assert.ok(m.complete_render_ms < scaled(20000), 'render took ' + m.complete_render_ms + ' ms');
    // The next polls reuse the built rows: the page stays responsive (a click is handled).
    await page.fill('#filter', 'be999');
    await eventually(async () => (await page.locator('#backend-list .backend:not([hidden])').count()) === 1, 10000, 'the filter');
    await page.close();
  } catch (e) {
    e.message += '\n--- daemon log ---\n' + s.log();
    throw e;
  } finally {
    await s.stop();
  }
});
