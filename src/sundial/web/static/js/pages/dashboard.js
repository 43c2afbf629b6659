// Keeps the dashboard's active-jobs panel current from the live channel's `jobs` topic: a full
// list on subscribing, then batches of changed and gone jobs, kept in a map and redrawn (status,
// progress, server; newest first). After a reconnect the list is re-read over REST and the
// subscription renewed. Only if the socket cannot be opened at all does the panel poll
// get_active_jobs every few seconds (a failed poll waits longer and tries again).
// Today's counts are re-read with `dash_stats` when a job appears in or leaves the list (it
// started or finished), at most once every few seconds; a quiet system sends no requests.

import { call } from '../api.js';
import { el } from '../dom.js';
import { LiveSocket } from '../live.js';

const panel = document.querySelector('[data-active-jobs]');
const counter = document.querySelector('[data-active-count]');
const { titles } = JSON.parse(document.getElementById('dashboard-data').textContent);
const POLL_MS = 3000;
const MAX_BACKOFF_MS = 30000;
const SHOWN = 10;
const WORDS = { queued: 'Queued', start_delay: 'Waiting', retry_delay: 'Retry wait', ready: 'Starting',
  starting: 'Starting', active: 'Running', finishing: 'Finishing' };
let delay = POLL_MS;
let shown = '';

function progressBar(job) {
  const value = Number(job.progress);
  const determinate = value > 0 && value < 1;
  return el('progress', { class: `job-progress${job.suspended ? ' held' : ''}`, max: 1, value: determinate ? value : null,
    'aria-label': `Progress of job ${job.id}` }, determinate ? `${Math.round(value * 100)}%` : '');
}

function jobItem(job) {
  const badge = job.suspended ? el('span', { class: 'badge warn' }, 'Waiting for resume')
    : el('span', { class: 'badge accent' }, WORDS[job.state] || 'Running');
  return el('li', {},
    el('a', { href: `/jobs/${encodeURIComponent(job.id)}` }, titles[job.event] || job.event || job.id), ' ',
    badge, ' ', progressBar(job), ' ',
    el('span', { class: 'muted small' }, job.server ? `on ${job.server}` : ''));
}

// Redraw only when something changed, so keyboard focus inside the panel is not lost each poll.
function render(rows, total) {
  const signature = JSON.stringify([total, rows.map((j) => [j.id, j.state, j.progress, j.server, Boolean(j.suspended)])]);
  if (signature === shown) return;
  shown = signature;
  if (counter) counter.textContent = String(total);
  if (!rows.length) {
    panel.replaceChildren(el('p', { class: 'empty' }, 'No jobs are running.'));
    return;
  }
  const parts = [el('ul', { class: 'job-list' }, ...rows.map(jobItem))];
  if (total > rows.length) parts.push(el('p', {}, el('a', { href: '/jobs' }, `${total - rows.length} more running`)));
  panel.replaceChildren(...parts);
}

// -- the live channel ---------------------------------------------------------------------------

const jobs = new Map();

function renderMap() {
  const rows = [...jobs.values()].sort((a, b) => (b.started || b.now || 0) - (a.started || a.now || 0));
  render(rows.slice(0, SHOWN), rows.length);
}

function onMessage(message) {
  if (message.type !== 'jobs') return;
  if (message.reset) jobs.clear();
  const arrived = (message.changed || []).some((job) => !jobs.has(job.id));
  for (const job of message.changed || []) jobs.set(job.id, job);
  for (const id of message.gone || []) jobs.delete(id);
  renderMap();
  if (!message.reset && (arrived || (message.gone || []).length)) refreshToday();
}

// -- today's counts -------------------------------------------------------------------------------

const today = document.getElementById('panel-today');
const TODAY_MIN_MS = 3000;
const TONES = { job_success: 'ok', job_warning: 'warn', job_error: 'danger', job_critical: 'danger', job_abort: 'danger' };
let todayTimer = 0;
let todayAt = 0;

function showToday(day) {
  for (const link of today.querySelectorAll('[data-stat]')) {
    const name = link.dataset.stat;
    const count = Number(day[name]) || 0;
    link.querySelector('[data-count]').textContent = String(count);
    for (const tone of ['ok', 'warn', 'danger']) link.classList.toggle(tone, Boolean(count) && TONES[name] === tone);
  }
}

async function readToday() {
  todayTimer = 0;
  todayAt = Date.now();
  try {
    const reply = await call('dash_stats', {});
    showToday(reply.stats?.day || {});
  } catch { /* the counts stay as they were; the next change tries again */ }
}

// Jobs finishing in a burst cost one request, not one each.
function refreshToday() {
  if (!today || todayTimer) return;
  todayTimer = setTimeout(readToday, Math.max(1000, TODAY_MIN_MS - (Date.now() - todayAt)));
}

async function onOpen(reconnected) {
  if (reconnected) {
    try {
      const reply = await call('get_active_jobs', { limit: SHOWN });
      render(reply.rows || [], reply.list ? reply.list.length : 0);
      refreshToday();
    } catch (error) {
      if (error.code === 'session') return;
    }
  }
  live.subscribe('jobs');
}

const live = new LiveSocket({ onOpen, onMessage, onUnavailable: () => setTimeout(poll, POLL_MS) });

// -- REST fallback (no WebSocket at all) ----------------------------------------------------------

async function poll() {
  try {
    const reply = await call('get_active_jobs', { limit: SHOWN });
    render(reply.rows || [], reply.list ? reply.list.length : 0);
    delay = POLL_MS;
  } catch (error) {
    if (error.code === 'session') return;
    delay = Math.min(delay * 2, MAX_BACKOFF_MS);
  }
  setTimeout(poll, delay);
}

if (panel) live.start();
