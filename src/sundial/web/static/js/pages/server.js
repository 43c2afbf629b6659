// The server page while it is open: live per-second charts (get_quickmon_data, once a second)
// and minute graphs (get_latest_monitor_data, once a minute). Polling pauses while the tab is
// hidden; a failed poll shows a banner and backs off up to 10 s, then recovers by itself. The
// server going offline or coming back is shown without a reload.

import { call } from '../api.js';
import { el } from '../dom.js';
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

function quickChart(monitor) {
  const kind = kindOf(monitor.type, monitor.suffix);
  const memory = kind === 'bytes' && !monitor.delta && String(monitor.source || '').startsWith('mem.');
  const max = kind === 'percent' ? 100 : (memory && data.mem_total) || 0;
  return new Chart({ title: monitor.title || monitor.id, kind, suffix: monitor.suffix || '', max, series: [monitor.title] });
}

const quickCharts = data.quick_monitors.map((monitor) => ({ monitor, chart: quickChart(monitor) }));
quickBox.replaceChildren(...quickCharts.map(({ chart }) => chart.node));

function drawQuick(rows) {
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

function toLogin() {
  window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
}

async function pollQuick() {
  quickTimer = 0;
  if (document.hidden) return;
  try {
    const reply = await call('get_quickmon_data', { server: data.id });
    const rows = reply.servers?.[data.id];
    setOnline(Array.isArray(rows));
    if (rows) drawQuick(rows);
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
  if (!quickTimer) pollQuick();
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

drawQuick(data.quick);
quickTimer = setTimeout(pollQuick, online ? POLL_MS : OFFLINE_POLL_MS);
pollMinutes();
