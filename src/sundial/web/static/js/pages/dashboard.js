// Keeps the dashboard's active-jobs panel current from the live channel's `jobs` topic: a full
// list on subscribing, then batches of changed and gone jobs, kept in a map and redrawn (status,
// progress, server; newest first). After a reconnect the list is re-read over REST and the
// subscription renewed. Only if the socket cannot be opened at all does the panel poll
// get_active_jobs every few seconds (a failed poll waits longer and tries again).

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
  return el('progress', { class: 'job-progress', max: 1, value: determinate ? value : null,
    'aria-label': `Progress of job ${job.id}` }, determinate ? `${Math.round(value * 100)}%` : '');
}

function jobItem(job) {
  return el('li', {},
    el('a', { href: `/jobs/${encodeURIComponent(job.id)}` }, titles[job.event] || job.event || job.id), ' ',
    el('span', { class: 'badge accent' }, WORDS[job.state] || 'Running'), ' ', progressBar(job), ' ',
    el('span', { class: 'muted small' }, job.server ? `on ${job.server}` : ''));
}

// Redraw only when something changed, so keyboard focus inside the panel is not lost each poll.
function render(rows, total) {
  const signature = JSON.stringify([total, rows.map((j) => [j.id, j.state, j.progress, j.server])]);
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
  for (const job of message.changed || []) jobs.set(job.id, job);
  for (const id of message.gone || []) jobs.delete(id);
  renderMap();
}

async function onOpen(reconnected) {
  if (reconnected) {
    try {
      const reply = await call('get_active_jobs', { limit: SHOWN });
      render(reply.rows || [], reply.list ? reply.list.length : 0);
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
