'use strict';
// The ElasticProxy dashboard: polls /status every second and renders it. Every string from the
// daemon (and so from discovery) is inserted with textContent, never as markup.
(function () {
  var POLL_MS = 1000;
  var last = '';
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells, cls) {
    var tr = document.createElement('tr');
    if (cls) tr.className = cls;
    for (var i = 0; i < cells.length; i++) {
      var c = cells[i];
      if (c instanceof Node) { var td = document.createElement('td'); td.appendChild(c); tr.appendChild(td); }
      else tr.appendChild(el('td', c));
    }
    return tr;
  }
  function ago(s) {
    if (s === undefined || s === null) return '-';
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    return (s / 3600).toFixed(1) + ' h ago';
  }
  function duration(s) {
    if (s === undefined || s === null) return '-';
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm';
  }

  function renderSummary(j) {
    var text = 'ElasticProxy ' + j.version + ': ' + (j.ready ? 'READY' : 'NOT READY') +
      (j.healthy ? '' : ', UNHEALTHY') + ' — ' + j.backends.length + ' backend(s), ' +
      j.instances.length + ' HAProxy instance(s)';
    if (!j.ready && j.not_ready_because) text += ' — ' + j.not_ready_because.split('\n')[0];
    var s = $('summary');
    s.textContent = text;
    s.className = j.ready ? 'ok' : 'bad';
  }

  // The config manager's last reload on the instance it reloads (config file management).
  function reloadCell(c) {
    if (!c) return '-';
    var mode = c.mode === 'config' ? 'config mode' : 'file follows runtime';
    var r = c.last_reload;
    if (!r) return el('span', mode + ': no reload yet', 'reload');
    var ok = r.result === 'ok';
    var text = mode + ': ' + r.result.toUpperCase().replace('_', ' ') + ' ' + ago(r.seconds_ago) +
      ' (' + ms(r.duration_seconds) + ', ' + c.reloads + ' reload(s) ok)' + (ok ? '' : ' — ' + r.message);
    return el('span', text, ok ? 'reload ok' : 'reload bad');
  }

  function renderInstances(j) {
    var f = document.createDocumentFragment();
    j.instances.forEach(function (i) {
      var modes = {};
      (i.backends || []).forEach(function (b) { modes[b.mode] = (modes[b.mode] || 0) + 1; });
      var m = Object.keys(modes).map(function (k) { return modes[k] + ' ' + k; }).join(', ');
      var tr = row([i.name, el('span', i.reachable ? 'REACHABLE' : 'UNREACHABLE', i.reachable ? 'ok' : 'bad'),
        i.haproxy_version || '-', i.pid || '-', duration(i.uptime_seconds), m || '-', reloadCell(i.config), i.last_error || '']);
      f.appendChild(tr);
    });
    $('instance-rows').replaceChildren(f);
  }

  function act(backend, confirm) {
    var out = $('action-result');
    out.textContent = (confirm ? 'confirming ' : 'rejecting ') + backend + '…';
    fetch('/api/guard/' + (confirm ? 'confirm' : 'reject') + '?backend=' + encodeURIComponent(backend), {
      method: 'POST', credentials: 'same-origin', headers: { 'X-ElasticProxy-Action': '1' }
    }).then(function (r) {
      return r.text().then(function (t) { out.textContent = (r.ok ? '' : 'HTTP ' + r.status + ': ') + t.trim(); out.className = r.ok ? 'ok' : 'bad'; });
    }).catch(function (e) { out.textContent = 'request failed: ' + e; out.className = 'bad'; })
      .then(function () { last = ''; poll(true); });
  }

  function renderHolds(j) {
    var f = document.createDocumentFragment();
    var n = 0;
    j.backends.forEach(function (g) {
      if (!g.hold) return;
      n++;
      var h = g.hold;
      var box = el('div', null, 'hold');
      box.setAttribute('data-backend', g.backend);
      var title = el('h3');
      title.appendChild(el('span', 'HELD (' + h.reason + ') ', 'warn'));
      title.appendChild(el('span', g.backend));
      box.appendChild(title);
      box.appendChild(el('p', 'Keeping ' + g.desired + ' server(s); the held set has ' + h.servers +
        ' — held since ' + ago(h.since_seconds_ago) + '; ' +
        (h.confirm_in_seconds !== undefined ? 'confirm_after applies it in ' + Math.ceil(h.confirm_in_seconds) + ' s'
          : 'never applied by waiting')));
      if (h.would_remove && h.would_remove.length) {
        box.appendChild(el('p', 'Would remove: ' + h.would_remove.slice(0, 50).join(', ') +
          (h.would_remove.length > 50 ? ' … (' + h.would_remove.length + ')' : ''), 'mono'));
      }
      var c = el('button', 'Confirm now'); c.type = 'button'; c.className = 'confirm';
      c.addEventListener('click', function () { act(g.backend, true); });
      var r = el('button', 'Reject'); r.type = 'button'; r.className = 'reject';
      r.addEventListener('click', function () { act(g.backend, false); });
      box.appendChild(c); box.appendChild(r);
      f.appendChild(box);
    });
    if (!n) f.appendChild(el('p', 'None.'));
    $('hold-list').replaceChildren(f);
  }

  function renderHooks(j) {
    var f = document.createDocumentFragment(), n = 0;
    j.backends.forEach(function (g) {
      (g.sources || []).forEach(function (s) {
        (s.hooks_in_flight || []).forEach(function (h) {
          n++;
          var late = h.deadline_in_seconds < 0;
          f.appendChild(row([g.backend, el('span', h.instance, 'mono'), h.hook,
            h.transition.replace('autoscaling:EC2_INSTANCE_', ''), h.progress, ago(h.since_seconds_ago),
            el('span', Math.round(h.deadline_in_seconds) + ' s', late ? 'bad' : ''),
            Math.max(0, Math.round(h.next_heartbeat_in_seconds)) + ' s']));
        });
      });
    });
    $('hook-rows').replaceChildren(f);
    $('hook-none').hidden = n > 0;
  }

  function renderSources(j) {
    var f = document.createDocumentFragment();
    j.backends.forEach(function (g) {
      (g.sources || []).forEach(function (s) {
        var err = s.last_error || '';
        if (s.rejected_endpoints && s.rejected_endpoints.length) {
          err += (err ? '; ' : '') + s.rejected + ' rejected: ' + s.rejected_endpoints.join('; ');
        }
        var health = !s.delivered ? el('span', 'WAITING', 'warn') : s.healthy ? el('span', 'HEALTHY', 'ok') : el('span', 'FAILING', 'bad');
        var errs = el('span', (s.errors || 0) + ' of ' + (s.snapshots || 0), s.errors ? 'src-errors warn' : 'src-errors');
        var events = el('span', String(s.events_per_minute || 0), 'src-events');
        var tr = row([g.backend, el('span', s.source, 'mono'), health, s.endpoints, ago(s.last_success_seconds_ago), errs, events, el('span', err, 'mono')]);
        tr.setAttribute('data-backend', g.backend);
        f.appendChild(tr);
      });
    });
    $('source-rows').replaceChildren(f);
  }

  // Backends are rebuilt only when their data changed (the page polls every second), and the
  // first render builds the first FIRST_CHUNK of them at once and the rest in slices, so the top
  // of the page appears without waiting for thousands of rows.
  var FIRST_CHUNK = 60, CHUNK = 150;
  var cache = {}, pendingJob = null;

  // One server in one HAProxy: its state in words. Maintenance an operator set (left alone by
  // ElasticProxy until they enable it) reads differently from ElasticProxy's own MAINT; a drain
  // says the sessions left and the time left until the backend's drain_timeout removes it.
  function serverText(s, st) {
    var w = ' w' + s.weight;
    if (s.operator_maint) return 'MAINT (set by operator, left alone)' + w + ' s' + s.sessions;
    if (s.health_gated) return 'HEALTH-GATED (DRAIN until its first health check passes)' + w + ' s' + s.sessions;
    if (st === 'DRAIN' && s.drain_since_seconds_ago !== undefined) {
      var t = s.drain_deadline_in_seconds === undefined
        ? 'draining for ' + Math.round(s.drain_since_seconds_ago) + 's, no drain_timeout'
        : s.drain_deadline_in_seconds > 0 ? Math.ceil(s.drain_deadline_in_seconds) + 's to drain_timeout'
          : 'drain_timeout reached';
      return 'DRAIN, ' + s.sessions + ' session' + (s.sessions === 1 ? '' : 's') + ', ' + t + w;
    }
    return st + w + ' s' + s.sessions;
  }

  function buildBackend(g, states, instances) {
    var names = {}, order = [];
    var desired = {};
    states.forEach(function (b) {
      if (!b) return;
      (b.desired_servers || []).forEach(function (s) { desired[s.name] = s; if (!names[s.name]) { names[s.name] = 1; order.push(s.name); } });
    });
    var actual = states.map(function (b) {
      var m = {};
      if (b) (b.actual_servers || []).forEach(function (s) { m[s.name] = s; if (!names[s.name]) { names[s.name] = 1; order.push(s.name); } });
      return m;
    });
    order.sort();
    // Labels discovery gave each server (Consul service name, tags, meta, zone, ...): a column
    // only for backends that have some.
    var labels = Object.create(null), anyLabels = false;
    (g.sources || []).forEach(function (s) {
      var sl = s.server_labels;
      if (!sl) return;
      for (var k in sl) { labels[k] = (labels[k] || []).concat(sl[k]); anyLabels = true; }
    });
    // Several sources: which of them gives each server (a column only then).
    var many = (g.sources || []).length > 1, from = Object.create(null);
    if (many) {
      g.sources.forEach(function (s) {
        (s.servers || []).forEach(function (n) { (from[n] = from[n] || []).push(s.source); });
      });
    }
    var box = el('div', null, 'backend');
    box.id = 'b-' + g.backend;
    box.setAttribute('data-backend', g.backend);
    var h = el('h3');
    var a = el('a', g.backend); a.href = '#b-' + g.backend;
    h.appendChild(a);
    var anyDiff = false;
    var tb = document.createElement('tbody');
    order.forEach(function (n) {
      var d = desired[n];
      var cells = [el('span', n, 'mono'), d ? d.address : '-', d ? (d.weight + (d.backup ? ' backup' : '')) : 'not desired'];
      if (many) cells.push(el('span', from[n] ? from[n].join('; ') : '-', 'mono from'));
      if (anyLabels) cells.push(el('span', labels[n] ? labels[n].join('; ') : '-', 'mono labels'));
      var diff = false;
      actual.forEach(function (m) {
        var s = m[n];
        if (!s) { cells.push(el('span', d ? 'MISSING' : '-', d ? 'bad' : '')); diff = diff || !!d; return; }
        var st = s.state.toUpperCase();
        var bad = !d || (st !== 'UP' && st !== 'DRAIN') || (d && d.weight !== s.weight && st !== 'DRAIN');
        diff = diff || bad;
        cells.push(el('span', serverText(s, st) + (d ? '' : ' (not desired)'),
          s.operator_maint ? 'warn opmaint' : bad ? 'bad' : (st === 'UP' ? 'ok' : 'warn')));
      });
      if (diff) anyDiff = true;
      tb.appendChild(row(cells, diff ? 'diff' : ''));
    });
    var conv = states.every(function (b) { return !b || b.converged; });
    box.setAttribute('data-differs', anyDiff || !conv ? '1' : '0');
    h.appendChild(el('span', ' — ' + g.desired + ' desired' + (g.ready ? '' : ', NOT READY') +
      (g.hold ? ', HELD (' + g.hold.reason + ')' : '') + (anyDiff || !conv ? ', DIFFERS' : ', in step'),
    anyDiff || !conv || g.hold ? 'bad' : 'ok'));
    box.appendChild(h);
    var srcs = (g.sources || []).map(function (s) { return s.source; }).join(', ');
    box.appendChild(el('p', 'from ' + (srcs || 'no source'), 'mono'));
    var t = document.createElement('table');
    var head = document.createElement('tr');
    ['Server', 'Address', 'Desired weight'].concat(many ? ['From source'] : [], anyLabels ? ['Labels (from discovery)'] : [])
      .forEach(function (x) { head.appendChild(el('th', x)); });
    instances.forEach(function (i) { head.appendChild(el('th', i.name)); });
    var th = document.createElement('thead'); th.appendChild(head);
    t.appendChild(th); t.appendChild(tb);
    var w = el('div', null, 'wrap'); w.appendChild(t);
    box.appendChild(w);
    return { box: box, differs: anyDiff || !conv };
  }

  function renderBackends(j) {
    if (pendingJob) { clearTimeout(pendingJob); pendingJob = null; }
    // Per backend: the union of desired and actual servers, one column per HAProxy instance.
    var per = {};
    j.instances.forEach(function (inst, ii) {
      (inst.backends || []).forEach(function (b) { (per[b.backend] = per[b.backend] || [])[ii] = b; });
    });
    var instanceNames = j.instances.map(function (i) { return i.name; });
    var next = {}, nodes = [], todo = [], built = 0;
    j.backends.forEach(function (g) {
      var states = per[g.backend] || [];
      var key = JSON.stringify([g.desired, g.ready, g.hold ? g.hold.reason : null,
        (g.sources || []).map(function (s) { return [s.source, s.server_labels || null, s.servers || null]; }), states, instanceNames]);
      var c = cache[g.backend];
      if (!c || c.key !== key) {
        if (built >= FIRST_CHUNK) {
          // Rebuilt in a later slice. Until then a backend already on the page keeps its old
          // rows (a poll that arrives before the slices finish must not blank them); only a
          // backend never built shows an empty placeholder.
          var ph = c ? c.box : el('div', null, 'backend');
          if (!c) ph.setAttribute('data-backend', g.backend);
          else next[g.backend] = c;  // old key: rebuilt again if these slices are cancelled
          todo.push({ g: g, states: states, key: key, ph: ph });
          nodes.push(ph);
          return;
        }
        c = buildBackend(g, states, j.instances);
        c.key = key;
        built++;
      }
      next[g.backend] = c;
      nodes.push(c.box);
    });
    cache = next;
    var list = $('backend-list');
    list.replaceChildren.apply(list, nodes);
    function finish() {
      var differ = 0;
      for (var k in cache) if (cache[k].differs) differ++;
      $('backend-count').textContent = j.backends.length + ' backend(s), ' + differ + ' differ';
      applyFilter();
    }
    finish();
    function slice() {
      pendingJob = null;
      todo.splice(0, CHUNK).forEach(function (t) {
        var c = buildBackend(t.g, t.states, j.instances);
        c.key = t.key;
        cache[t.g.backend] = c;
        t.ph.replaceWith(c.box);
      });
      finish();
      if (todo.length) pendingJob = setTimeout(slice, 0);
      else complete();
    }
    if (todo.length) pendingJob = setTimeout(slice, 0);
    else complete();
  }

  function complete() {
    if (!window.epComplete) {
      performance.mark('ep-complete-render');
    }
    window.epComplete = (window.epComplete || 0) + 1;
  }

  // Local time of day, HH:MM:SS (toLocaleTimeString costs ~0.1 ms a call: 500 rows add up).
  function two(n) { return n < 10 ? '0' + n : String(n); }
  function clock(unix) {
    var t = new Date(unix * 1000);
    return two(t.getHours()) + ':' + two(t.getMinutes()) + ':' + two(t.getSeconds());
  }

  function ms(x) { return x < 1 ? Math.round(x * 1000) + ' ms' : x.toFixed(2) + ' s'; }

  var chartKey = null, chartJob = null;
  function renderChanges(j) {
    var c = j.convergence;
    if (!c) return;
    var rate = c.changes / Math.max(1, c.window_minutes);
    $('conv-summary').textContent = 'Last ' + c.window_minutes + ' min: ' + c.changes + ' change(s) (' +
      rate.toFixed(1) + '/min), ' + c.convergences + ' convergence(s), p50 ' + ms(c.p50_seconds) +
      ', p99 ' + ms(c.p99_seconds) + '.';
    // The chart is drawn after the rows (a canvas's first draw is slow on a software-rendered
    // browser) and only when its minutes changed.
    var key = JSON.stringify(c.minutes || []);
    if (key !== chartKey) {
      chartKey = key;
      if (chartJob) clearTimeout(chartJob);
      chartJob = setTimeout(function () { chartJob = null; drawChart(c.minutes || []); }, 0);
    }
    var f = document.createDocumentFragment();
    (j.timeline || []).forEach(function (a) {
      var tr = row([clock(a.at_unix), a.backend, el('span', a.server, 'mono'), a.action, a.reason,
        el('span', a.ok ? 'OK' : 'FAILED: ' + (a.error || ''), a.ok ? 'ok' : 'bad'), ms(a.latency_ms / 1000), a.instance]);
      tr.setAttribute('data-text', [a.backend, a.server, a.action, a.reason, a.instance, a.ok ? 'ok' : 'failed'].join(' ').toLowerCase());
      f.appendChild(tr);
    });
    $('timeline-rows').replaceChildren(f);
    applyTimelineFilter();
  }

  function applyTimelineFilter() {
    var q = $('timeline-filter').value.trim().toLowerCase();
    var rows = $('timeline-rows').children, shown = 0;
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = !!q && rows[i].getAttribute('data-text').indexOf(q) < 0;
      if (!rows[i].hidden) shown++;
    }
    $('timeline-count').textContent = shown + ' of ' + rows.length + ' (the last 500 are kept)';
  }

  function drawChart(minutes) {
    var cv = $('chart');
    var g = cv.getContext && cv.getContext('2d');
    if (!g) return;
    var W = cv.width, H = cv.height, pad = 4, n = minutes.length || 1, bw = (W - 2 * pad) / n;
    g.clearRect(0, 0, W, H);
    var maxC = 1, maxL = 0.001;
    minutes.forEach(function (m) { maxC = Math.max(maxC, m.changes); maxL = Math.max(maxL, m.p99_seconds); });
    g.fillStyle = '#c8d3e6';
    minutes.forEach(function (m, i) {
      var h = (H - 2 * pad) * m.changes / maxC;
      g.fillRect(pad + i * bw + 1, H - pad - h, Math.max(1, bw - 2), h);
    });
    function line(key, color) {
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      var started = false;
      minutes.forEach(function (m, i) {
        if (!m.convergences) { started = false; return; }
        var x = pad + i * bw + bw / 2, y = H - pad - (H - 2 * pad) * m[key] / maxL;
        if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
        g.fillStyle = color; g.fillRect(x - 2, y - 2, 4, 4);
      });
      g.stroke();
    }
    line('p50_seconds', '#1b6e20');
    line('p99_seconds', '#b00020');
    g.fillStyle = '#333'; g.font = '11px sans-serif';
    g.fillText('max ' + maxC + ' changes/min, ' + ms(maxL) + ' p99', pad + 2, 12);
    window.epChartDraws = (window.epChartDraws || 0) + 1;  // for the browser tests
  }

  function applyFilter() {
    var q = $('filter').value.trim().toLowerCase();
    var only = $('only-diff').checked;
    var list = $('backend-list').children;
    for (var i = 0; i < list.length; i++) {
      var b = list[i];
      var name = (b.getAttribute('data-backend') || '').toLowerCase();
      b.hidden = (q && name.indexOf(q) < 0) || (only && b.getAttribute('data-differs') !== '1');
    }
  }

  function render(j) {
    var first = !window.epRendered;
    if (first) performance.mark('ep-render-start');
    var T = [performance.now()];
    renderSummary(j);
    renderInstances(j);
    renderHolds(j); T.push(performance.now());
    renderSources(j); T.push(performance.now());
    renderHooks(j); T.push(performance.now());
    renderBackends(j); T.push(performance.now());
    renderChanges(j); T.push(performance.now());
    // For the browser tests: ms spent on summary+HAProxy+guard, sources, hooks, backends, changes.
    if (first) window.epPhases = T.slice(1).map(function (t, i) { return Math.round(t - T[i]); });
    if (first) {
      // For the browser tests: navigation start -> first render, and the render alone.
      performance.mark('ep-first-render');
      performance.measure('ep-render', 'ep-render-start', 'ep-first-render');
    }
    window.epRendered = (window.epRendered || 0) + 1;
    document.documentElement.setAttribute('data-rendered', String(window.epRendered));
  }

  var timer = null;
  function poll(now) {
    if (timer) { clearTimeout(timer); timer = null; }
    fetch('/status?compact', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { location.reload(); return null; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.text();
    }).then(function (t) {
      if (t === null || t === undefined) return;
      if (t !== last) {
        last = t;
        var j = JSON.parse(t);
        if (!window.epRendered) performance.mark('ep-status-parsed');
        render(j);
      }
    }).catch(function (e) {
      var s = $('summary'); s.textContent = 'cannot read /status: ' + e.message; s.className = 'bad';
    }).then(function () { timer = setTimeout(poll, POLL_MS); });
  }

  $('filter').addEventListener('input', applyFilter);
  $('only-diff').addEventListener('change', applyFilter);
  $('timeline-filter').addEventListener('input', applyTimelineFilter);
  poll(true);
})();
