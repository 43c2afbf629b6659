// The job page while a job runs: the live channel (`job:<id>`) brings the job's state and
// progress, its log as it is printed (after an initial tail) and the final record, on which
// the page reloads to show what was stored. Two sparklines are drawn from the resource samples
// seen. After a reconnect the page re-reads the job over REST and subscribes again (the
// subscription's tail replaces the log). Only when the socket cannot be opened at all does it
// poll `get_job` and `tail_live_job_log` once a second instead (backing off up to 10 s on
// failures). Finished archived logs are fetched once. A job that becomes suspended (or is
// resumed elsewhere) reloads the page, which then shows (or drops) the Resume form.

import { call } from '../api.js';
import { el } from '../dom.js';
import { LiveSocket, toLogin } from '../live.js';
import { drawSpark } from './spark.js';

const data = JSON.parse(document.getElementById('job-data').textContent);
const log = document.getElementById('job-log');
const banner = document.querySelector('[data-connection]');
const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10000;
const TAIL_BYTES = 65536;
const MAX_LOG_CHARS = 1 << 20; // a chatty job keeps only the end of its log in the page
const SPARK_POINTS = 120;
const REMOVE = 'activity,timelines,procs,conns,input,data,files,output,actions,limits,params,script';
const ACTIVE_WORDS = { queued: 'Queued', start_delay: 'Waiting', retry_delay: 'Retry wait', ready: 'Starting',
  starting: 'Starting', active: 'Running', finishing: 'Finishing' };

let lastText = log.textContent;
let delay = POLL_MS;
let started = data.started;
let logChars = log.textContent.length;
const samples = { cpu: [], mem: [] };

function setText(selector, text) {
  const node = document.querySelector(selector);
  if (node) node.textContent = text;
}

// Live chunks are appended as text nodes; past MAX_LOG_CHARS the page keeps the last half.
function appendLog(text, replace = false) {
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
  if (replace) {
    log.textContent = text;
    logChars = text.length;
  } else if (text) {
    log.append(text);
    logChars += text.length;
  }
  if (logChars > MAX_LOG_CHARS) {
    log.textContent = log.textContent.slice(-MAX_LOG_CHARS / 2);
    logChars = log.textContent.length;
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function updateLog(text) {
  if (text === lastText) return;
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
  if (lastText && text.startsWith(lastText)) log.append(text.slice(lastText.length));
  else log.textContent = text;
  lastText = text;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function updateProgress(job) {
  const bar = document.querySelector('.job-progress');
  if (!bar) return;
  const value = Number(job.progress);
  if (value > 0 && value < 1) {
    bar.value = value;
    bar.textContent = `${Math.round(value * 100)}%`;
  } else {
    bar.removeAttribute('value');
    bar.textContent = '';
  }
}

function bytes(value) {
  let size = Number(value) || 0;
  for (const unit of ['B', 'KB', 'MB', 'GB']) {
    if (size < 1024 || unit === 'GB') return unit === 'B' ? `${size} B` : `${size.toFixed(1)} ${unit}`;
    size /= 1024;
  }
  return `${size} TB`;
}

function resourceText(stat, kind) {
  if (!stat || !stat.count) return null;
  const show = (v) => (kind === 'cpu' ? `${Number(v || 0).toFixed(1)}%` : bytes(v));
  return `${show(stat.current)} now · ${show(stat.total / stat.count)} average · ${show(stat.max)} peak`;
}

function updateResources(job) {
  for (const kind of ['cpu', 'mem']) {
    const text = resourceText(job[kind], kind);
    if (text) setText(`[data-resource="${kind}"]`, text);
    if (job[kind]?.count) {
      samples[kind].push(Number(job[kind].current) || 0);
      if (samples[kind].length > SPARK_POINTS) samples[kind].shift();
    }
  }
  setText('[data-log-size]', bytes(job.log_file_size || 0));
  const box = document.querySelector('[data-sparks]');
  if (box && (samples.cpu.length > 1 || samples.mem.length > 1)) {
    box.replaceChildren(drawSpark(samples.cpu, 'CPU', 'spark-cpu'), drawSpark(samples.mem, 'Memory', 'spark-mem'));
  }
}

function elapsedText(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const parts = [[Math.floor(total / 3600), 'h'], [Math.floor((total % 3600) / 60), 'm'], [total % 60, 's']];
  return parts.filter(([n]) => n).map(([n, u]) => `${n}${u}`).join(' ') || '0s';
}

function updateJob(job) {
  // Held by a suspend action, or resumed: the page shows (or drops) its Resume form, so it reloads.
  if (Boolean(job.suspended) !== Boolean(data.suspended)) {
    window.location.reload();
    return;
  }
  const word = job.suspended ? 'Waiting for resume' : (ACTIVE_WORDS[job.state] || 'Running');
  setText('[data-job-status] .badge', word);
  setText('[data-job-state]', word);
  setText('[data-job-server]', job.server || '—');
  const line = document.querySelector('[data-job-line]');
  if (line) {
    line.textContent = job.status || '';
    line.hidden = !job.status;
  }
  if (job.started) started = job.started;
  showElapsed();
  updateProgress(job);
  updateResources(job);
}

function showElapsed() {
  if (started) setText('[data-job-elapsed]', elapsedText(Date.now() / 1000 - started));
}

function connection(ok) {
  if (banner) banner.hidden = ok;
}

// -- the live channel ---------------------------------------------------------------------------

const topic = `job:${data.id}`;

function onMessage(message) {
  if (message.topic !== topic && message.type !== 'error') return;
  if (message.type === 'job') updateJob(message.job);
  else if (message.type === 'log') appendLog(message.text, Boolean(message.initial));
  else if (message.type === 'final') window.location.reload();
  else if (message.type === 'error' && message.topic === undefined && message.code === 'notfound') window.location.reload();
}

async function onOpen(reconnected) {
  if (reconnected) {
    try {
      const reply = await call('get_job', { id: data.id, remove: REMOVE });
      if (reply.job.final) {
        window.location.reload();
        return;
      }
      updateJob(reply.job);
    } catch (error) {
      if (error.code === 'session') {
        toLogin();
        return;
      }
    }
  }
  live.subscribe(topic, { tail: TAIL_BYTES });
}

const live = new LiveSocket({ onOpen, onMessage, onState: connection, onUnavailable: () => poll() });

// -- REST fallback (no WebSocket at all) ----------------------------------------------------------

async function poll() {
  try {
    const [reply, tail] = await Promise.all([
      call('get_job', { id: data.id, remove: REMOVE }),
      call('tail_live_job_log', { id: data.id, bytes: TAIL_BYTES }),
    ]);
    connection(true);
    delay = POLL_MS;
    if (reply.job.final) {
      window.location.reload();
      return;
    }
    if (tail.text) updateLog(tail.text);
    updateJob(reply.job);
  } catch (error) {
    if (error.code === 'session') {
      toLogin();
      return;
    }
    connection(false);
    delay = Math.min(delay * 2, MAX_BACKOFF_MS);
  }
  setTimeout(poll, delay);
}

async function fetchArchivedLog() {
  try {
    const response = await fetch(data.log_url, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const text = await response.text();
    log.textContent = text.slice(-262144);
    if (text.length > 262144) setText('[data-log-note]', 'Showing the end; download the log for all of it');
  } catch {
    log.replaceChildren(el('span', { class: 'muted' }, 'The log could not be loaded; try the download link.'));
  }
}

if (data.live) {
  live.start();
  setInterval(showElapsed, 1000); // the clock only; no request
} else if (data.fetch_log) fetchArchivedLog();
else if (log.textContent) log.scrollTop = log.scrollHeight;
