// ledge console. Plain JavaScript, no build step, nothing loaded from
// elsewhere. Every name shown comes from clients (queue names, client ids,
// subjects), so text only ever goes into the page through textContent:
// nothing here writes HTML.
'use strict';

const POLL_MS = 2000;
const HISTORY = 150; // points on the chart: five minutes at one per poll

const state = {
  tab: 'queues',
  role: 'monitor',
  history: [], // {t, in, out}
  busy: false,
};

const $ = (id) => document.getElementById(id);

// el builds an element; strings among the children become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function num(n) {
  if (n === undefined || n === null) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: n < 10 ? 1 : 0 });
}

function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

function dur(s) {
  s = Math.max(0, Math.round(s || 0));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd' + Math.floor((s % 86400) / 3600) + 'h';
}

async function api(method, path) {
  const resp = await fetch(path, { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    throw new Error((body && body.error) || (method + ' ' + path + ': HTTP ' + resp.status));
  }
  return body;
}

let toastTimer;
function toast(text, error) {
  const t = $('toast');
  t.textContent = text;
  t.className = error ? 'error' : '';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

// confirmAction asks before an action; resolves true on Confirm.
function confirmAction(text) {
  const d = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (ok) => {
      $('confirm-ok').onclick = null;
      $('confirm-cancel').onclick = null;
      d.onclose = null;
      if (d.open) d.close();
      resolve(ok);
    };
    $('confirm-ok').onclick = () => done(true);
    $('confirm-cancel').onclick = () => done(false);
    d.onclose = () => done(false);
    d.showModal();
  });
}

async function act(text, method, path, done) {
  if (!(await confirmAction(text))) return;
  try {
    const r = await api(method, path);
    toast(done + (r && r.purged !== undefined ? ': ' + num(r.purged) + ' messages removed' : ''));
  } catch (e) {
    toast(e.message, true);
  }
  refresh();
}

async function peek(title, path) {
  const body = $('peek-body');
  $('peek-title').textContent = title;
  body.replaceChildren(el('p', { class: 'meta' }, 'Loading…'));
  $('peek').showModal();
  try {
    const r = await api('GET', path);
    if (!r.messages.length) {
      body.replaceChildren(el('p', { class: 'meta' }, 'No messages.'));
      return;
    }
    body.replaceChildren(...r.messages.map((m) => el('div', { class: 'msg' },
      el('div', { class: 'meta' }, '#' + m.seq + ' ' + m.subject + ' · ' + bytes(m.size) + ' · ' +
        new Date(m.time).toLocaleString() + (m.state ? ' · ' + m.state : '')),
      el('pre', {}, m.payload !== undefined ? m.payload : 'base64: ' + (m.payload_base64 || '')),
    )));
  } catch (e) {
    body.replaceChildren(el('p', { class: 'meta' }, e.message));
  }
}

const enc = encodeURIComponent;

function actionButton(label, onclick, cls) {
  return el('button', { class: 'act ' + (cls || ''), type: 'button', onclick }, label);
}

function renderServer(s) {
  state.role = s.role;
  $('server-name').textContent = s.name;
  $('server-meta').textContent = s.version + ' · up ' + dur(s.uptime_seconds) + ' · ' + s.cores + ' cores · sync ' + (s.sync || '–');
  const h = $('health');
  h.textContent = s.health;
  h.className = 'badge ' + s.health;
  $('card-conns').textContent = num(s.connections);
  $('card-in').textContent = num(s.in_msgs_per_sec);
  $('card-out').textContent = num(s.out_msgs_per_sec);
  $('card-stored').textContent = num(s.messages);
  $('card-mem').textContent = bytes(s.mem_bytes);
  $('card-disk').textContent = s.disk ? bytes(s.disk.free_bytes) : '–';
  state.history.push({ t: Date.now(), in: s.in_msgs_per_sec, out: s.out_msgs_per_sec });
  if (state.history.length > HISTORY) state.history.shift();
  drawChart();
}

function renderHealth(h) {
  const problems = (h.checks || []).filter((c) => c.status !== 'ok');
  $('checks').replaceChildren(...problems.map((c) => el('li', { class: c.status }, c.message || c.name)));
}

// drawChart plots messages per second in and out on the canvas.
function drawChart() {
  const c = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w * ratio || c.height !== h * ratio) {
    c.width = w * ratio;
    c.height = h * ratio;
  }
  const g = c.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const pts = state.history;
  const peak = Math.max(0, ...pts.map((p) => Math.max(p.in, p.out)));
  const max = Math.max(1, peak);
  $('chart-max').textContent = 'peak ' + num(peak) + ' msgs/s';
  const style = getComputedStyle(document.documentElement);
  g.strokeStyle = style.getPropertyValue('--line');
  g.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = Math.round((h * i) / 4) + 0.5;
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
  }
  const x = (i) => w - ((pts.length - 1 - i) * w) / (HISTORY - 1);
  const y = (v) => h - 4 - (v / max) * (h - 8);
  for (const [key, color] of [['in', '--in'], ['out', '--out']]) {
    g.strokeStyle = style.getPropertyValue(color);
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(x(i), y(p[key])) : g.moveTo(x(i), y(p[key]))));
    g.stroke();
  }
}

function renderQueues(list) {
  const admin = state.role === 'admin';
  const f = $('filter-queues').value.toLowerCase();
  const rows = list.queues.filter((q) => !f || (q.name + ' ' + q.stream).toLowerCase().includes(f));
  $('queues').tBodies[0].replaceChildren(...rows.map((q) => {
    const key = q.stream + '/' + q.consumer;
    const path = '/api/queues/' + enc(q.stream) + '/' + enc(q.consumer);
    const actions = el('td', { class: 'actions' });
    if (admin) {
      actions.append(actionButton('Peek', () => peek('Next messages of ' + q.name, path + '/messages?limit=20')));
      actions.append(actionButton('Purge', () => act('Purge queue "' + q.name + '"? Its ' + num(q.messages) +
        ' messages (every message of stream ' + q.stream + ') are removed.', 'POST', path + '/purge', 'Purged ' + q.name), 'danger purge'));
      if (q.protocol === 'jetstream') {
        actions.append(actionButton('Delete', () => act('Delete consumer "' + q.consumer + '" of stream ' + q.stream + '?',
          'DELETE', path, 'Deleted ' + q.consumer), 'danger'));
      }
    }
    return el('tr', { 'data-key': key, class: q.messages_unacknowledged > 0 ? 'hot' : '' },
      el('td', { class: 'name', title: q.name }, q.name),
      el('td', { class: 'opt' }, q.protocol),
      el('td', { class: 'name opt', title: q.stream }, q.stream),
      el('td', { class: 'num ready' }, num(q.messages_ready)),
      el('td', { class: 'num unacked' }, num(q.messages_unacknowledged)),
      el('td', { class: 'num opt' }, num(q.messages_redelivered)),
      el('td', { class: 'num' }, num(q.consumers)),
      el('td', { class: 'num opt' }, num(q.publish_per_sec)),
      el('td', { class: 'num opt' }, num(q.deliver_per_sec)),
      el('td', { class: 'num opt' }, num(q.ack_per_sec)),
      actions);
  }));
}

function renderConnections(list) {
  const admin = state.role === 'admin';
  $('connections').tBodies[0].replaceChildren(...list.connections.map((c) => {
    const client = c.name || c.client_id || '';
    const actions = el('td', { class: 'actions' });
    if (admin) {
      actions.append(actionButton('Close', () => act('Close ' + c.protocol + ' connection ' + c.id + ' (' + (client || c.addr) +
        ')? Its unacknowledged messages are delivered again.', 'DELETE', '/api/connections/' + enc(c.protocol) + '/' + c.id,
      'Closed ' + c.protocol + ' connection ' + c.id), 'danger'));
    }
    return el('tr', { 'data-key': c.protocol + '/' + c.id },
      el('td', {}, c.protocol),
      el('td', { class: 'num opt' }, String(c.id)),
      el('td', { class: 'name', title: client }, client || '–'),
      el('td', { class: 'opt' }, c.addr),
      el('td', { class: 'opt' }, c.user || '–'),
      el('td', { class: 'num opt' }, num(c.subscriptions)),
      el('td', { class: 'num opt' }, bytes(c.pending_bytes)),
      el('td', { class: 'num opt' }, num(c.in_msgs)),
      el('td', { class: 'num opt' }, num(c.out_msgs)),
      el('td', { class: 'num' }, num(c.in_msgs_per_sec)),
      el('td', { class: 'num' }, num(c.out_msgs_per_sec)),
      el('td', { class: 'num opt' }, dur(c.idle_seconds)),
      actions);
  }));
  $('connections-more').textContent = list.total > list.connections.length
    ? 'Showing ' + list.connections.length + ' of ' + num(list.total) + ' connections, the busiest first.' : '';
}

function renderStreams(list) {
  const admin = state.role === 'admin';
  $('streams').tBodies[0].replaceChildren(...list.streams.map((s) => {
    const path = '/api/streams/' + enc(s.name);
    const actions = el('td', { class: 'actions' });
    if (admin) {
      actions.append(actionButton('Peek', () => peek('First messages of ' + s.name, path + '/messages?limit=20')));
      if (!s.name.startsWith('MQTT_') && s.name !== 'AMQP_meta') {
        actions.append(actionButton('Purge', () => act('Purge stream "' + s.name + '"? Its ' + num(s.messages) + ' messages are removed.',
          'POST', path + '/purge', 'Purged ' + s.name), 'danger'));
      }
      if (s.owner === 'jetstream') {
        actions.append(actionButton('Delete', () => act('Delete stream "' + s.name + '" with its ' + num(s.messages) +
          ' messages and ' + s.consumers + ' consumers?', 'DELETE', path, 'Deleted ' + s.name), 'danger'));
      }
    }
    return el('tr', { 'data-key': s.name },
      el('td', { class: 'name', title: s.name }, s.name),
      el('td', { class: 'opt' }, s.owner),
      el('td', { class: 'name opt', title: s.subjects.join(', ') }, s.subjects.join(', ') || '–'),
      el('td', { class: 'num' }, num(s.messages)),
      el('td', { class: 'num opt' }, bytes(s.bytes)),
      el('td', { class: 'num' }, bytes(s.disk_bytes)),
      el('td', { class: 'num opt' }, num(s.consumers)),
      el('td', { class: 'num opt' }, num(s.in_msgs_per_sec)),
      actions);
  }));
}

function renderUplinks(list) {
  $('uplinks-none').hidden = list.uplinks.length > 0;
  $('uplinks').tBodies[0].replaceChildren(...list.uplinks.map((u) => el('tr', { 'data-key': u.name },
    el('td', {}, u.name),
    el('td', { class: 'state-' + u.state }, u.state),
    el('td', { class: 'name opt', title: u.server || u.upstream }, u.server || u.upstream || '–'),
    el('td', { class: 'num' }, num(u.backlog_msgs)),
    el('td', { class: 'num' }, u.backlog_msgs ? dur(u.oldest_age_seconds) : '–'),
    el('td', { class: 'num opt' }, num(u.msgs_per_sec)),
    el('td', { class: 'num opt' }, num(u.forwarded)),
    el('td', { class: 'num opt' }, num(u.dropped)),
    el('td', { class: 'err' }, u.last_error || ''))));
}

// refresh reads what the open tab shows, and the overview.
async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    const [server, health] = await Promise.all([api('GET', '/api/server'), api('GET', '/readyz').catch((e) => null)]);
    renderServer(server);
    if (health) renderHealth(health);
    switch (state.tab) {
      case 'queues': renderQueues(await api('GET', '/api/queues?limit=1000')); break;
      case 'connections': {
        const q = $('filter-connections').value;
        renderConnections(await api('GET', '/api/connections?limit=500&sort=in_msgs_per_sec&order=desc' + (q ? '&q=' + enc(q) : '')));
        break;
      }
      case 'streams': renderStreams(await api('GET', '/api/streams?limit=1000')); break;
      case 'uplinks': renderUplinks(await api('GET', '/api/uplinks')); break;
    }
    $('updated').textContent = 'Last update ' + new Date().toLocaleTimeString() + '.';
  } catch (e) {
    $('updated').textContent = 'Update failed: ' + e.message;
  } finally {
    state.busy = false;
  }
}

function selectTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll('nav[role=tablist] button')) {
    b.setAttribute('aria-selected', String(b.dataset.tab === name));
  }
  for (const s of document.querySelectorAll('section.tab')) {
    s.hidden = s.id !== 'tab-' + name;
  }
  refresh();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('nav[role=tablist] button')) {
    b.addEventListener('click', () => selectTab(b.dataset.tab));
  }
  $('filter-queues').addEventListener('input', refresh);
  $('filter-connections').addEventListener('input', refresh);
  $('peek-close').addEventListener('click', () => $('peek').close());
  window.addEventListener('resize', drawChart);
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
});
