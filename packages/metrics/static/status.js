/*
 * status.js — the masq status page. Plain script, no build step; uPlot (loaded before it)
 * draws the charts.
 *
 * Contract:
 *  - Read-only: it only GETs /api/status and /api/sessions. Nothing on the page changes the
 *    gateway; the form and the buttons change what this page asks for.
 *  - Every value from the gateway is put into the page as text (textContent / text nodes),
 *    never parsed as markup: no HTML-parsing DOM sink anywhere (a unit test greps for them).
 *  - Bounded polling: one request of each kind in flight, the next one 2 s after the last
 *    answer, none while the tab is hidden; each request is aborted after 10 s. The session
 *    table asks for one page (≤ 250 rows) at a time.
 */
'use strict';
(function () {
  const POLL_MS = 2000;
  const TIMEOUT_MS = 10000;
  const HISTORY_POINTS = 150;
  const PALETTE = ['#2f6fdb', '#e0762b', '#2e9e5b', '#8e44ad', '#c9362b', '#16a2b8', '#b58900', '#6c757d', '#d63384', '#20c997'];
  const TCP_STATES = ['none', 'syn_sent', 'syn_received', 'established', 'fin_out', 'fin_in', 'closing', 'reset'];

  const $ = (id) => document.getElementById(id);

  /** Create an element; children are nodes or strings (strings become text nodes). */
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        if (k === 'className') e.className = props[k];
        else if (k === 'title') e.title = props[k];
        else if (k.startsWith('data-')) e.setAttribute(k, String(props[k]));
      }
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ formatting
  function si(n, digits = 1) {
    if (!Number.isFinite(n)) return '–';
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(digits) + ' G';
    if (a >= 1e6) return (n / 1e6).toFixed(digits) + ' M';
    if (a >= 1e4) return (n / 1e3).toFixed(digits) + ' k';
    if (a >= 100 || Number.isInteger(n)) return String(Math.round(n));
    return n.toFixed(digits);
  }
  const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
  function bytes(n) {
    if (!Number.isFinite(n)) return '–';
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i === 0 || Math.abs(n) >= 100 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + u[i];
  }
  function dur(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
    return Math.floor(s / 86400) + 'd' + String(Math.floor((s % 86400) / 3600)).padStart(2, '0') + 'h';
  }
  const clock = (secs) => new Date(secs * 1000).toLocaleTimeString('en-GB');
  const pct = (n, of) => (of > 0 ? ((100 * n) / of).toFixed(n > 0 && n / of < 0.001 ? 3 : 1) + ' %' : '–');

  function bar(n, of) {
    const fill = el('div', { className: 'fill' });
    const f = of > 0 ? Math.min(1, n / of) : 0;
    fill.style.width = (100 * f).toFixed(2) + '%';
    if (f >= 0.9) fill.classList.add('bad');
    else if (f >= 0.7) fill.classList.add('warn');
    return el('div', { className: 'bar' }, fill);
  }

  // ------------------------------------------------------------------ requests
  async function getJson(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
      const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
      if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  function showError(node, msg) {
    node.hidden = msg === null;
    node.textContent = msg === null ? '' : msg;
  }

  // ------------------------------------------------------------------ charts
  class Chart {
    constructor(node, height, yFormat) {
      this.node = node;
      this.height = height;
      this.yFormat = yFormat;
      this.names = null;
      this.plot = null;
    }
    width() {
      return Math.max(200, this.node.clientWidth || 400);
    }
    /** labels: series labels; xs: seconds; ys: one array per label. */
    set(labels, xs, ys) {
      const key = labels.join('\u0000');
      const data = [xs, ...ys];
      if (this.plot === null || this.names !== key) {
        if (this.plot !== null) this.plot.destroy();
        this.names = key;
        const fmt = this.yFormat;
        this.plot = new uPlot(
          {
            width: this.width(),
            height: this.height,
            cursor: { drag: { x: false, y: false } },
            legend: { live: true },
            scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
            axes: [
              { space: 70, values: (_u, vals) => vals.map((v) => clock(v)) },
              { size: 72, values: (_u, vals) => vals.map((v) => fmt(v)) },
            ],
            series: [
              {},
              ...labels.map((l, i) => ({ label: l, stroke: PALETTE[i % PALETTE.length], width: 1.5, value: (_u, v) => (v == null ? '–' : fmt(v)), points: { show: false } })),
            ],
          },
          data,
          this.node,
        );
      } else {
        this.plot.setData(data);
      }
    }
    resize() {
      if (this.plot !== null) this.plot.setSize({ width: this.width(), height: this.height });
    }
  }

  const charts = {
    out: new Chart($('chart-packets-out'), 180, si),
    in: new Chart($('chart-packets-in'), 180, si),
    bytesOut: new Chart($('chart-bytes-out'), 180, bytes),
    bytesIn: new Chart($('chart-bytes-in'), 180, bytes),
    drops: new Chart($('chart-drops'), 180, si),
    workers: new Chart($('chart-workers'), 130, si),
  };
  window.addEventListener('resize', () => Object.values(charts).forEach((c) => c.resize()));

  // ------------------------------------------------------------------ the status poll
  const hist = { t: [], series: {} };
  let lastT = 0;

  function mergeHistory(h) {
    const n0 = hist.t.length;
    for (const name of Object.keys(h.series)) if (!(name in hist.series)) hist.series[name] = new Array(n0).fill(0);
    for (let i = 0; i < h.t.length; i++) {
      hist.t.push(h.t[i]);
      for (const name of Object.keys(hist.series)) {
        const s = h.series[name];
        hist.series[name].push(s && i < s.length ? s[i] : 0);
      }
    }
    if (h.t.length > 0) lastT = h.t[h.t.length - 1];
    const extra = hist.t.length - HISTORY_POINTS;
    if (extra > 0) {
      hist.t.splice(0, extra);
      for (const s of Object.values(hist.series)) s.splice(0, extra);
    }
  }

  function drawCharts() {
    const xs = hist.t.map((t) => t / 1000);
    const s = (name) => hist.series[name] || xs.map(() => 0);
    const protos = ['tcp', 'udp', 'icmp', 'other'];
    charts.out.set(protos, xs, protos.map((p) => s(`packets.out.${p}`)));
    charts.in.set(protos, xs, protos.map((p) => s(`packets.in.${p}`)));
    charts.bytesOut.set(protos, xs, protos.map((p) => s(`bytes.out.${p}`)));
    charts.bytesIn.set(protos, xs, protos.map((p) => s(`bytes.in.${p}`)));
    const reasons = Object.keys(hist.series).filter((n) => n.startsWith('drops.') && hist.series[n].some((v) => v > 0));
    if (reasons.length === 0) charts.drops.set(['no drops'], xs, [xs.map(() => 0)]);
    else charts.drops.set(reasons.map((r) => r.slice(6)), xs, reasons.map((r) => hist.series[r]));
    const workers = Object.keys(hist.series).filter((n) => n.startsWith('worker.'));
    charts.workers.set(workers.map((w) => 'worker ' + w.slice(7)), xs, workers.map((w) => hist.series[w]));
    if (hist.t.length > 1) $('window').textContent = `last ${dur(hist.t[hist.t.length - 1] - hist.t[0])}, every ${dur(POLL_MS)}`;
  }

  function renderSessions(st) {
    const s = st.sessions;
    $('sessions-total').textContent = `${int(s.live)} of ${int(s.limit)} (${pct(s.live, s.limit)}) · ${int(s.mappings)} mappings`;
    const fill = $('sessions-fill');
    const f = s.limit > 0 ? Math.min(1, s.live / s.limit) : 0;
    fill.style.width = (100 * f).toFixed(2) + '%';
    fill.classList.toggle('warn', f >= 0.7 && f < 0.9);
    fill.classList.toggle('bad', f >= 0.9);
    const rows = [];
    const row = (proto, state, n) => el('tr', null, el('td', null, proto), el('td', null, state), el('td', { className: 'num' }, int(n)), el('td', { className: 'num' }, pct(n, s.limit)));
    rows.push(row('tcp', 'all', s.byProto.tcp));
    for (const state of TCP_STATES) if (s.tcpStates[state] > 0) rows.push(row('', state, s.tcpStates[state]));
    for (const p of ['udp', 'icmp', 'other']) rows.push(row(p, 'all', s.byProto[p]));
    replaceRows($('sessions-by-state').tBodies[0], rows);
  }

  function renderPorts(st) {
    const rows = st.ports.map((p) =>
      el('tr', null, el('td', null, p.address), el('td', { className: 'num' }, int(p.inUse)), el('td', { className: 'num' }, int(p.limit)), el('td', { className: 'barcell', title: pct(p.inUse, p.limit) }, bar(p.inUse, p.limit))),
    );
    replaceRows($('ports-table').tBodies[0], rows.length ? rows : [el('tr', null, el('td', { className: 'empty' }, 'no external address'))]);
    const top = st.topHosts.map((h) => {
      const a = el('a', { title: 'show its sessions' }, h.host);
      a.addEventListener('click', () => {
        form.elements.inside.value = h.host;
        filterChanged();
      });
      return el('tr', null, el('td', null, a), el('td', { className: 'num' }, int(h.sessions)));
    });
    replaceRows($('top-hosts').tBodies[0], top.length ? top : [el('tr', null, el('td', { className: 'empty' }, 'none yet (recounted every 10 s)'))]);
  }

  function renderWorkers(st) {
    const rows = st.workers.map((w) => {
      const rate = hist.series[`worker.${w.worker}`];
      return el(
        'tr',
        null,
        el('td', null, w.worker),
        el('td', { className: 'num' }, int(w.packets)),
        el('td', { className: 'num' }, rate && rate.length ? si(rate[rate.length - 1]) : '–'),
        el('td', { className: 'num', title: 'batches waiting / ring capacity' }, `${int(w.ringDepth)} / ${int(w.ringCapacity)}`),
        el('td', { className: 'num' }, int(w.restarts)),
      );
    });
    replaceRows($('workers-table').tBodies[0], rows);
  }

  function renderRules(st) {
    const r = st.rules;
    $('rules-listing').textContent = r.error ? `rules do not parse: ${r.error}` : r.listing.join('\n');
    $('rules-source').textContent = r.source.join('\n');
  }

  function renderSummary(st) {
    const up = dur(st.now - st.startedAt);
    const out = Object.values(st.packets.out).reduce((a, b) => a + b, 0);
    const inn = Object.values(st.packets.in).reduce((a, b) => a + b, 0);
    const drops = Object.values(st.drops).reduce((a, b) => a + b, 0);
    $('summary').textContent = `${int(st.sessions.live)} sessions · ${si(out)} packets out, ${si(inn)} in · ${bytes(st.bytes.out)} out, ${bytes(st.bytes.in)} in · ${si(drops)} dropped · up ${up}`;
    $('updated').textContent = 'updated ' + new Date(st.now).toLocaleTimeString('en-GB');
  }

  let statusTimer = null;
  let statusBusy = false;
  async function pollStatus() {
    statusTimer = null;
    if (statusBusy || document.hidden) return;
    statusBusy = true;
    try {
      const st = await getJson(`/api/status?since=${lastT}`);
      mergeHistory(st.history);
      drawCharts();
      renderSummary(st);
      renderSessions(st);
      renderPorts(st);
      renderWorkers(st);
      renderRules(st);
      showError($('error'), null);
    } catch (e) {
      showError($('error'), `status: ${e.message}`);
    } finally {
      statusBusy = false;
      if (!document.hidden) statusTimer = setTimeout(pollStatus, POLL_MS);
    }
  }

  // ------------------------------------------------------------------ the session table
  const form = $('filter');
  const stateSelect = form.elements.state;
  for (const s of [...TCP_STATES, 'active']) stateSelect.append(el('option', null, s));
  let offset = 0;
  let matched = 0;
  let tableTimer = null;
  let tableBusy = false;
  let tableAgain = false;

  function pageSize() {
    return Number($('page-size').value);
  }

  function query() {
    const p = new URLSearchParams();
    for (const k of ['proto', 'state', 'inside', 'outside', 'port']) {
      const v = form.elements[k].value.trim();
      if (v !== '') p.set(k, v);
    }
    p.set('offset', String(offset));
    p.set('limit', String(pageSize()));
    return p;
  }

  function endpoint(addr, port, proto) {
    return proto === 'icmp' ? `${addr} id ${port}` : `${addr}:${port}`;
  }

  function renderTable(page) {
    matched = page.matched;
    const rows = page.rows.map((r) =>
      el(
        'tr',
        { 'data-inside': r.inside, 'data-partition': r.partition, 'data-id': r.id },
        el('td', { className: 'proto' }, r.proto),
        el('td', { className: 'inside' }, endpoint(r.inside, r.insidePort, r.proto)),
        el('td', { className: 'external' }, endpoint(r.external, r.externalPort, r.proto)),
        el('td', { className: 'remote' }, endpoint(r.remote, r.remotePort, r.proto)),
        el('td', { className: 'state' }, r.state + (r.hairpin ? ' (hairpin)' : '') + (r.inboundCreated ? ' (in)' : '')),
        el('td', { className: 'num' }, dur(r.idleMs)),
        el('td', { className: 'num' }, dur(r.expiresMs)),
        el('td', { className: 'num packets' }, `${int(r.packetsOut)} / ${int(r.packetsIn)}`),
        el('td', { className: 'num bytes' }, `${bytes(r.bytesOut)} / ${bytes(r.bytesIn)}`),
        el('td', { className: 'num' }, r.partition),
      ),
    );
    replaceRows($('sessions').tBodies[0], rows.length ? rows : [el('tr', null, el('td', { className: 'empty' }, page.matched === 0 ? 'no session matches' : 'past the last page'))]);
    const first = page.matched === 0 ? 0 : page.offset + 1;
    const last = page.offset + page.rows.length;
    $('page').textContent = `${int(first)}–${int(last)} of ${int(page.matched)}`;
    $('table-count').textContent = `${int(page.live)} live · ${int(page.matched)} matching · scanned in ${page.scanMs.toFixed(1)} ms`;
    $('first').disabled = $('prev').disabled = page.offset === 0;
    $('next').disabled = last >= page.matched;
  }

  async function pollTable() {
    tableTimer = null;
    if (tableBusy) {
      tableAgain = true;
      return;
    }
    if (document.hidden) return;
    tableBusy = true;
    try {
      const page = await getJson(`/api/sessions?${query()}`);
      // A page beyond the end (sessions went away): go back to the last page.
      if (page.rows.length === 0 && page.offset > 0 && page.matched > 0) {
        offset = Math.max(0, Math.floor((page.matched - 1) / pageSize()) * pageSize());
        tableAgain = true;
      } else {
        renderTable(page);
      }
      showError($('table-error'), null);
      for (const k of ['inside', 'outside', 'port']) form.elements[k].classList.remove('invalid');
    } catch (e) {
      showError($('table-error'), e.message);
      const m = /^(\w+):/.exec(e.message);
      if (m && form.elements[m[1]]) form.elements[m[1]].classList.add('invalid');
    } finally {
      tableBusy = false;
      if (tableAgain) {
        tableAgain = false;
        pollTable();
      } else if (!document.hidden) {
        tableTimer = setTimeout(pollTable, POLL_MS);
      }
    }
  }

  function refetchTable() {
    if (tableTimer !== null) clearTimeout(tableTimer);
    pollTable();
  }

  let debounce = null;
  function filterChanged() {
    offset = 0;
    if (debounce !== null) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      refetchTable();
    }, 250);
  }
  form.addEventListener('input', filterChanged);
  form.addEventListener('change', filterChanged);
  form.addEventListener('reset', () => setTimeout(filterChanged, 0));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filterChanged();
  });
  $('page-size').addEventListener('change', () => {
    offset = 0;
    refetchTable();
  });
  $('first').addEventListener('click', () => {
    offset = 0;
    refetchTable();
  });
  $('prev').addEventListener('click', () => {
    offset = Math.max(0, offset - pageSize());
    refetchTable();
  });
  $('next').addEventListener('click', () => {
    if (offset + pageSize() < matched) offset += pageSize();
    refetchTable();
  });

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    if (statusTimer === null && !statusBusy) pollStatus();
    if (tableTimer === null && !tableBusy) pollTable();
  });

  pollStatus();
  pollTable();
})();
