// The job page while a job runs: once a second it asks for the job and the end of its log,
// updates progress, status and resource numbers, and draws two small sparklines from the
// samples it has seen. A failed poll backs off (up to 10 s) and keeps trying; when the job is
// final the page reloads to show the stored record. Finished archived logs are fetched once.

import { call } from '../api.js';
import { el } from '../dom.js';
import { drawSpark } from './spark.js';

const data = JSON.parse(document.getElementById('job-data').textContent);
const log = document.getElementById('job-log');
const banner = document.querySelector('[data-connection]');
const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10000;
const TAIL_BYTES = 65536;
const SPARK_POINTS = 120;
const REMOVE = 'activity,timelines,procs,conns,input,data,files,output,actions,limits,params,script';
const ACTIVE_WORDS = { queued: 'Queued', start_delay: 'Waiting', retry_delay: 'Retry wait', ready: 'Starting',
  starting: 'Starting', active: 'Running', finishing: 'Finishing' };

let lastText = log.textContent;
let delay = POLL_MS;
const samples = { cpu: [], mem: [] };

function setText(selector, text) {
  const node = document.querySelector(selector);
  if (node) node.textContent = text;
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
  const word = ACTIVE_WORDS[job.state] || 'Running';
  setText('[data-job-status] .badge', word);
  setText('[data-job-state]', word);
  setText('[data-job-server]', job.server || '—');
  const line = document.querySelector('[data-job-line]');
  if (line) {
    line.textContent = job.status || '';
    line.hidden = !job.status;
  }
  if (job.started) setText('[data-job-elapsed]', elapsedText(Date.now() / 1000 - job.started));
  updateProgress(job);
  updateResources(job);
}

function connection(ok) {
  if (banner) banner.hidden = ok;
}

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
      window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
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

if (data.live) poll();
else if (data.fetch_log) fetchArchivedLog();
else if (log.textContent) log.scrollTop = log.scrollHeight;
