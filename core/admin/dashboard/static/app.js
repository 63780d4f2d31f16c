// Conduit dashboard: vanilla JS, no build step. Every value from the server is put into the
// page with textContent, never parsed as HTML.
'use strict';
(function () {
  var HISTORY = 300; // points kept per route: 5 minutes at one report a second
  var history = {};  // "site route" -> [{rps, err, p99}]
  var tapCtl = null;
  var tapPaused = false;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) { tr.appendChild(c instanceof Node ? c : el('td', c)); });
    return tr;
  }
  function td(child, cls) { var t = el('td', null, cls); t.appendChild(child); return t; }
  function ms(v) { return v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v.toFixed(v < 10 ? 2 : 0) + ' ms'; }
  function notice(msg, bad) { var n = $('notice'); n.textContent = msg; n.className = bad ? 'error' : ''; }

  // api calls an Admin API endpoint through the dashboard; a 401 (session ended) shows the
  // login form again.
  function api(path, opts) {
    opts = opts || {};
    opts.credentials = 'same-origin';
    return fetch('/dashboard/api/' + path, opts).then(function (r) {
      if (r.status === 401) { location.reload(); throw new Error('signed out'); }
      var ct = r.headers.get('Content-Type') || '';
      var body = ct.indexOf('json') >= 0 ? r.json() : Promise.resolve(null);
      return body.then(function (j) {
        if (!r.ok) throw new Error((j && j.message) || ('HTTP ' + r.status));
        return j;
      });
    });
  }
  function post(path, body) {
    return api(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: body === undefined ? undefined : JSON.stringify(body)});
  }

  // confirmThen asks in the page before an action runs.
  function confirmThen(text, action) {
    var d = $('confirm');
    $('confirm-text').textContent = text;
    d.returnValue = '';
    d.onclose = function () { if (d.returnValue === 'ok') action(); };
    d.showModal();
    $('confirm-ok').focus();
  }

  function overview() {
    return api('overview').then(function (o) {
      $('hdr-version').textContent = o.version || '';
      var dl = $('overview');
      dl.textContent = '';
      var lr = o.last_reload;
      var items = [
        ['Version', o.version || 'devel'],
        ['Bundle', o.bundle],
        ['Features', (o.features || []).join(', ')],
        ['Uptime', Math.round(o.uptime_secs) + ' s'],
        ['Config', o.config_path || '(built in memory)'],
        ['Generation', '#' + o.generation + ', loaded ' + new Date(o.loaded_at).toLocaleString()],
        ['In flight', o.inflight],
        ['Last reload', lr ? (lr.ok ? 'ok' : 'refused: ' + lr.error) + ' at ' + new Date(lr.at).toLocaleTimeString() + (lr.warnings ? ' (' + lr.warnings + ' warnings)' : '') : 'none since start']
      ];
      items.forEach(function (it) {
        dl.appendChild(el('dt', it[0]));
        var dd = el('dd', it[1]);
        if (it[0] === 'Last reload') { dd.id = 'last-reload'; if (lr && !lr.ok) dd.className = 'bad'; }
        if (it[0] === 'Generation') dd.id = 'generation';
        dl.appendChild(dd);
      });
      var tb = $('sites');
      tb.textContent = '';
      (o.sites || []).forEach(function (s) {
        var c = s.certificate;
        var cert = !c ? '' : c.error ? 'error: ' + c.error : c.subject + ' (' + (c.dns_names || []).join(', ') + '), expires ' + new Date(c.not_after).toLocaleDateString();
        tb.appendChild(row([s.label, s.host || '*', s.port, s.tls ? 'yes' : 'no', td(document.createTextNode(cert), 'url')]));
      });
    }).catch(function (e) { notice('Overview: ' + e.message, true); });
  }

  function upstreams() {
    return api('upstreams').then(function (u) {
      var state = {};
      (u.upstreams || []).forEach(function (x) { state[x.url] = x; });
      var tb = $('routes');
      tb.textContent = '';
      (u.routes || []).forEach(function (rt) {
        (rt.targets || []).forEach(function (t) {
          var s = state[t.url] || {};
          var stName = t.drained ? 'drained' : (s.state || (t.healthy ? 'healthy' : 'unhealthy'));
          var st = el('td', stName, 'state-' + stName);
          st.setAttribute('data-upstream', t.url);
          var w = el('input', null, 'weight');
          w.type = 'number'; w.min = '1'; w.value = t.weight;
          w.setAttribute('aria-label', 'Weight of ' + t.url + ' on ' + rt.path);
          var b = el('button', 'Set', 'secondary');
          b.type = 'button';
          b.setAttribute('aria-label', 'Set the weight of ' + t.url + ' on ' + rt.path);
          b.onclick = function () {
            var n = parseInt(w.value, 10);
            confirmThen('Set the weight of ' + t.url + ' on ' + rt.path + ' to ' + n + '?', function () {
              post('upstreams/weight', {site: rt.site, route: rt.path, target: t.url, weight: n})
                .then(function () { notice('Weight of ' + t.url + ' set to ' + n + '.'); upstreams(); },
                      function (e) { notice('Weight: ' + e.message, true); });
            });
          };
          var dr = el('button', t.drained ? 'Undrain' : 'Drain', 'secondary');
          dr.type = 'button';
          dr.setAttribute('aria-label', (t.drained ? 'Undrain ' : 'Drain ') + t.url + ' on ' + rt.path);
          dr.onclick = function () {
            var verb = t.drained ? 'undrain' : 'drain';
            confirmThen((t.drained ? 'Put ' + t.url + ' back into ' : 'Take ' + t.url + ' out of ') + rt.path + ' (until the next reload)?', function () {
              post('upstreams/' + verb, {site: rt.site, route: rt.path, target: t.url})
                .then(function () { notice(t.url + ' on ' + rt.path + ': ' + verb + 'ed.'); upstreams(); },
                      function (e) { notice('Drain: ' + e.message, true); });
            });
          };
          var wc = el('td'); wc.appendChild(w); wc.appendChild(b); wc.appendChild(dr);
          tb.appendChild(row([rt.path, rt.site, rt.strategy, td(document.createTextNode(t.url), 'url'), st,
            s.active_connections || 0, s.latency_ms ? ms(s.latency_ms) : '', wc]));
        });
      });
      if (!tb.firstChild) tb.appendChild(row([td(document.createTextNode('no proxy routes'), 'muted')]));
    }).catch(function (e) {
      $('routes').textContent = '';
      $('routes').appendChild(row([e.message]));
    });
  }

  function spark(values, cls, label) {
    var NS = 'http://www.w3.org/2000/svg';
    var w = 90, h = 22, max = Math.max.apply(null, values.concat([1e-9]));
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', w); svg.setAttribute('height', h);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
    var pl = document.createElementNS(NS, 'polyline');
    pl.setAttribute('class', cls);
    var n = values.length, pts = [];
    values.forEach(function (v, i) { pts.push(((n > 1 ? i / (n - 1) : 1) * (w - 2) + 1).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 2)).toFixed(1)); });
    pl.setAttribute('points', pts.join(' '));
    svg.appendChild(pl);
    return svg;
  }

  function report(rep) {
    $('traffic-window').textContent = 'window ' + rep.window_secs.toFixed(0) + ' s' + (rep.dropped ? ', ' + rep.dropped + ' events dropped' : '');
    var seen = {};
    rep.routes.forEach(function (r) {
      var k = r.site + ' ' + r.name;
      seen[k] = true;
      var h = history[k] || (history[k] = []);
      h.push({rps: r.rps, err: (1 - r.success) * 100, p99: r.p99_ms, row: r});
      if (h.length > HISTORY) h.shift();
    });
    Object.keys(history).forEach(function (k) {
      if (seen[k]) return;
      var h = history[k];
      h.push({rps: 0, err: 0, p99: 0, row: null});
      if (h.length > HISTORY) h.shift();
      if (h.every(function (p) { return p.rps === 0; })) delete history[k];
    });
    var tb = $('traffic');
    tb.textContent = '';
    var keys = Object.keys(history).sort();
    if (!keys.length) { tb.appendChild(row([td(document.createTextNode('no requests in the window'), 'muted')])); return; }
    keys.forEach(function (k) {
      var h = history[k], last = h[h.length - 1].row, i = k.indexOf(' ');
      var site = k.slice(0, i), name = k.slice(i + 1);
      var charts = el('td');
      charts.appendChild(spark(h.map(function (p) { return p.rps; }), 'rate', 'requests per second of ' + name));
      charts.appendChild(spark(h.map(function (p) { return p.err; }), 'errors', 'error percentage of ' + name));
      charts.appendChild(spark(h.map(function (p) { return p.p99; }), 'p99', 'p99 latency of ' + name));
      var rate = el('td', last ? last.rps.toFixed(1) : '0.0');
      rate.setAttribute('data-route', name);
      tb.appendChild(row([name, site, rate, last ? (last.success * 100).toFixed(1) + '%' : '',
        last ? ms(last.p50_ms) : '', last ? ms(last.p99_ms) : '', charts]));
    });
  }

  function top() {
    var es = new EventSource('/dashboard/api/top?window=10s&interval=1s');
    es.addEventListener('report', function (e) { report(JSON.parse(e.data)); });
    es.onerror = function () { $('traffic-window').textContent = '(reconnecting…)'; };
  }

  var TAP_HEADERS = 'User-Agent,Accept,Content-Type,Content-Length,Authorization,Cookie,Set-Cookie,X-Request-Id,X-Forwarded-For,Location,Cache-Control,Server';

  function tapEntry(ev) {
    var li = el('li');
    var d = el('details');
    var s = el('summary', ev.time.slice(11, 23) + ' ' + ev.method + ' ' + ev.host + ev.path + (ev.query ? '?' + ev.query : '') + ' → ' + ev.status + ' ' + ms(ev.duration_ms) + (ev.route ? ' [' + ev.route + ']' : ''));
    if (ev.status >= 500) s.className = 'bad';
    d.appendChild(s);
    var dl = el('dl');
    function add(k, v) { if (v !== undefined && v !== null && v !== '') { dl.appendChild(el('dt', k)); dl.appendChild(el('dd', v)); } }
    add('request id', ev.request_id); add('client', ev.ip); add('upstream', ev.upstream);
    add('upstream time', ev.upstream_ms !== undefined ? ms(ev.upstream_ms) : ''); add('bytes', ev.bytes);
    Object.keys(ev.request_headers || {}).sort().forEach(function (k) { add('> ' + k, ev.request_headers[k]); });
    Object.keys(ev.response_headers || {}).sort().forEach(function (k) { add('< ' + k, ev.response_headers[k]); });
    d.appendChild(dl);
    li.appendChild(d);
    return li;
  }

  function tapStart() {
    if (tapCtl) tapCtl.abort();
    var ctl = tapCtl = new AbortController();
    var q = new URLSearchParams();
    var f = $('tap-filter');
    ['route', 'status', 'method', 'path'].forEach(function (n) { var v = f.elements[n].value.trim(); if (v) q.set(n, v); });
    q.set('header', TAP_HEADERS);
    $('tap-state').textContent = 'connecting…';
    // Read as a stream here rather than through api(), which waits for the whole body.
    fetch('/dashboard/api/tap?' + q.toString(), {credentials: 'same-origin', signal: ctl.signal}).then(function (r) {
      if (r.status === 401) { location.reload(); return; }
      if (!r.ok) return r.json().then(function (j) { $('tap-state').textContent = 'tap: ' + j.message; });
      $('tap-state').textContent = 'streaming';
      var reader = r.body.getReader(), dec = new TextDecoder(), buf = '';
      var list = $('tap');
      function pump() {
        return reader.read().then(function (res) {
          if (res.done) { if (tapCtl === ctl) $('tap-state').textContent = 'stream ended'; return; }
          buf += dec.decode(res.value, {stream: true});
          var lines = buf.split('\n');
          buf = lines.pop();
          lines.forEach(function (line) {
            if (!line) return;
            var ev = JSON.parse(line);
            if (ev.dropped && !ev.method) { $('tap-state').textContent = 'streaming (' + ev.dropped + ' events dropped)'; return; }
            list.insertBefore(tapEntry(ev), list.firstChild);
            while (list.children.length > 200) list.removeChild(list.lastChild);
          });
          return pump();
        });
      }
      return pump();
    }).catch(function (e) { if (e.name !== 'AbortError') $('tap-state').textContent = 'tap: ' + e.message; });
  }

  function tapToggle() {
    var b = $('tap-toggle');
    tapPaused = !tapPaused;
    b.textContent = tapPaused ? 'Resume' : 'Pause';
    b.setAttribute('aria-pressed', String(tapPaused));
    if (tapPaused) { if (tapCtl) tapCtl.abort(); tapCtl = null; $('tap-state').textContent = 'paused'; } else tapStart();
  }

  function init() {
    $('reload').onclick = function () {
      confirmThen('Reload the configuration from its file?', function () {
        post('reload').then(function (r) {
          notice('Reload: ' + r.message + (r.warnings ? ' (' + r.warnings.length + ' warnings)' : ''));
          overview(); upstreams();
        }, function (e) { notice('Reload refused: ' + e.message, true); overview(); });
      });
    };
    $('logout').onclick = function () {
      fetch('/dashboard/logout', {method: 'POST', credentials: 'same-origin'}).then(function () { location.reload(); });
    };
    $('tap-filter').onsubmit = function (e) { e.preventDefault(); if (!tapPaused) tapStart(); };
    $('tap-toggle').onclick = tapToggle;
    $('purge').onsubmit = function (e) {
      e.preventDefault();
      var u = e.target.elements.url.value.trim();
      confirmThen('Purge ' + u + ' from the cache?', function () {
        api('cache/purge?url=' + encodeURIComponent(u), {method: 'DELETE'})
          .then(function (r) { notice(r.purged ? 'Purged ' + u + '.' : u + ' was not cached.'); },
                function (e) { notice('Purge: ' + e.message, true); });
      });
    };
    overview(); upstreams(); top(); tapStart();
    setInterval(upstreams, 2000);
    setInterval(overview, 10000);
  }
  document.addEventListener('DOMContentLoaded', init);
})();
