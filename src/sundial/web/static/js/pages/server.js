// The server page while it is open: live per-second charts from the live channel's
// `server:<id>` topic (the last minute on subscribing, then one row each second as the
// satellite sends it, and the server going offline or coming back), and minute graphs
// (get_latest_monitor_data, once a minute). After a reconnect the rows are re-read over REST and
// the subscription renewed; a lost connection shows a banner until it is back. Only if the
// socket cannot be opened at all are the per-second rows polled (get_quickmon_data, once a
// second, backing off up to 10 s on failures, every 5 s while the server is offline). Hidden
// tabs do not draw (nor poll); coming back draws at once.

import { call } from '../api.js';
import { el } from '../dom.js';
import { LiveSocket, toLogin } from '../live.js';
import { Chart } from './chart.js';
import { kindOf, minuteSeries, quickPoints } from './metrics.js';

const data = JSON.parse(document.getElementById('server-data').textContent);
const quickBox = document.querySelector('[data-quick-charts]');
const minuteBox = document.querySelector('[data-minute-charts]');
const banner = document.querySelector('[data-connection]');
const POLL_MS = 1000;
const OFFLINE_POLL_MS = 5000;
const MINUTE_MS = 60000;
const MAX_BACKOFF_MS = 10000;
const QUICK_WINDOW = 60;
const HOUR = 3600;
let delay = POLL_MS;
let online = data.online;
let quickTimer = 0;
let minuteTimer = 0;
let polling = false; // true only in the REST fallback
let quickRows = data.quick.slice();

function quickChart(monitor) {
  const kind = kindOf(monitor.type, monitor.suffix);
  const memory = kind === 'bytes' && !monitor.delta && String(monitor.source || '').startsWith('mem.');
  const max = kind === 'percent' ? 100 : (memory && data.mem_total) || 0;
  return new Chart({ title: monitor.title || monitor.id, kind, suffix: monitor.suffix || '', max, series: [monitor.title] });
}

const quickCharts = data.quick_monitors.map((monitor) => ({ monitor, chart: quickChart(monitor) }));
quickBox.replaceChildren(...quickCharts.map(({ chart }) => chart.node));

function drawQuick(rows) {
  if (document.hidden) return;
  const end = rows.length ? rows[rows.length - 1].date : Date.now() / 1000;
  for (const { monitor, chart } of quickCharts) chart.update([quickPoints(rows, monitor)], end - QUICK_WINDOW, end);
}

// -- live state ------------------------------------------------------------------------------------

function setOnline(now) {
  if (now === online) return;
  online = now;
  const badge = document.querySelector('[data-server-status] .badge');
  if (badge) {
    badge.textContent = now ? 'Online' : 'Offline';
    badge.className = `badge ${now ? 'ok' : 'muted'}`;
  }
  const state = document.querySelector('[data-live-state]');
  if (state) state.textContent = now ? 'Updated every second' : 'The server is offline; live metrics resume when it reconnects.';
}

function connection(ok) {
  if (banner) banner.hidden = ok;
}

// -- the live channel ---------------------------------------------------------------------------

const topic = `server:${data.id}`;

function onMessage(message) {
  if (message.topic !== topic) return;
  if (message.type === 'server') {
    setOnline(message.online);
    if (!message.online) quickRows = [];
  } else if (message.type === 'quickmon') {
    if (message.reset) quickRows = message.rows || [];
    else if (message.row) quickRows.push(message.row);
    if (quickRows.length > QUICK_WINDOW + 5) quickRows = quickRows.slice(-(QUICK_WINDOW + 5));
    drawQuick(quickRows);
  }
}

async function onOpen(reconnected) {
  if (reconnected) {
    try {
      const reply = await call('get_quickmon_data', { server: data.id });
      const fresh = reply.servers?.[data.id];
      setOnline(Array.isArray(fresh));
      quickRows = fresh || [];
      drawQuick(quickRows);
    } catch (error) {
      if (error.code === 'session') {
        toLogin();
        return;
      }
    }
  }
  live.subscribe(topic);
}

function startPolling() {
  polling = true;
  quickTimer = setTimeout(pollQuick, online ? POLL_MS : OFFLINE_POLL_MS);
}

const live = new LiveSocket({ onOpen, onMessage, onState: connection, onUnavailable: startPolling });

// -- REST fallback (no WebSocket at all) ----------------------------------------------------------

async function pollQuick() {
  quickTimer = 0;
  if (document.hidden) return;
  try {
    const reply = await call('get_quickmon_data', { server: data.id });
    const rows = reply.servers?.[data.id];
    setOnline(Array.isArray(rows));
    if (rows) drawQuick(quickRows = rows);
    connection(true);
    delay = online ? POLL_MS : OFFLINE_POLL_MS;
  } catch (error) {
    if (error.code === 'session') {
      toLogin();
      return;
    }
    connection(false);
    delay = Math.min(delay * 2, MAX_BACKOFF_MS);
  }
  quickTimer = setTimeout(pollQuick, delay);
}

// -- minute graphs -----------------------------------------------------------------------------

function drawMinutes(rows) {
  const series = minuteSeries(rows, data.monitors);
  const state = document.querySelector('[data-minute-state]');
  if (state) state.textContent = rows.length ? `${rows.length} minute${rows.length === 1 ? '' : 's'}` : '';
  if (!series.length) {
    minuteBox.replaceChildren(el('p', { class: 'empty' }, rows.length
      ? 'No monitors are defined, so there is nothing to graph per minute yet.'
      : 'No minute samples yet: the satellite sends one every minute while it is connected.'));
    return;
  }
  const end = rows[rows.length - 1].date;
  minuteBox.replaceChildren(...series.map(({ monitor, points }) => {
    const kind = kindOf(monitor.data_type, monitor.suffix);
    const chart = new Chart({ title: monitor.title || monitor.id, kind, suffix: monitor.suffix || '',
      max: kind === 'percent' ? 100 : 0, series: [monitor.title || monitor.id] });
    chart.update([points], end - HOUR, end);
    return chart.node;
  }));
}

async function pollMinutes() {
  minuteTimer = 0;
  if (document.hidden) return;
  try {
    const reply = await call('get_latest_monitor_data', { server: data.id, sys: 'hourly', limit: 60 });
    drawMinutes(reply.rows || []);
  } catch (error) {
    if (error.code === 'session') {
      toLogin();
      return;
    }
    minuteBox.replaceChildren(el('p', { class: 'empty' }, `The minute graphs could not be loaded: ${error.message}`));
  }
  minuteTimer = setTimeout(pollMinutes, MINUTE_MS);
}

// Hidden tabs stop asking; coming back asks at once.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  if (polling && !quickTimer) pollQuick();
  else drawQuick(quickRows);
  if (!minuteTimer) pollMinutes();
});

// Uncheck "Automatic groups" to pick groups by hand; checked, the API recomputes them.
const serverForm = document.querySelector('form[data-verb="update_server"]');
if (serverForm) {
  const auto = serverForm.elements.namedItem('autoGroup');
  const picks = serverForm.querySelector('fieldset.choices');
  const sync = () => { if (picks) picks.disabled = Boolean(auto?.checked); };
  auto?.addEventListener('change', sync);
  sync();
  serverForm.addEventListener('api:submit', (event) => {
    const { params } = event.detail;
    if (params.autoGroup) delete params.groups;
    if (params.title === '') delete params.title; // the API keeps a title once set; empty is refused
  });
}

drawQuick(quickRows);
live.start();
pollMinutes();
