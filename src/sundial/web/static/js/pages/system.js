// The system page: follows a key rotation through get_internal_jobs (once a second) and shows its
// report when it ends; downloads a backup through a single-use transfer token, so the download
// is a plain link the browser saves (no file held in page memory).

import { call } from '../api.js';
import { notice } from '../dom.js';

const data = JSON.parse(document.getElementById('system-data').textContent);
const form = document.querySelector('form[data-verb="admin_rotate_secret_key"]');
const box = document.querySelector('[data-rotation]');
const result = document.querySelector('[data-rotation-result]');
const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10000;
const INDEXES = ['alerts', 'jobs', 'servers', 'snapshots', 'activity', 'tickets'];

function setText(selector, text) {
  const node = document.querySelector(selector);
  if (node) node.textContent = text;
}

function showProgress(job) {
  box.hidden = false;
  const bar = document.querySelector('[data-rotation-progress]');
  const value = Number(job.progress) || 0;
  if (value > 0 && value < 1) bar.value = value;
  else bar.removeAttribute('value');
  setText('[data-rotation-percent]', value > 0 ? `${Math.round(value * 100)}%` : '');
  setText('[data-rotation-status]', job.status || 'Working…');
}

// The finished job leaves an `internal_job` activity record with its report.
// The scheduler card was rendered before the rotation paused the scheduler.
function markSchedulerPaused() {
  const card = document.getElementById('panel-scheduler');
  if (!card) return;
  card.querySelector('[data-scheduler-line]')?.setAttribute('hidden', '');
  card.querySelector('[data-scheduler-paused]')?.removeAttribute('hidden');
  for (const button of card.querySelectorAll('button[data-verb]')) {
    if (button.textContent.includes('Pause')) button.hidden = true;
  }
}

async function showResult(jobId) {
  box.hidden = true;
  markSchedulerPaused();
  if (form) form.hidden = true;
  result.hidden = false;
  const link = document.querySelector('[data-rotation-link]');
  link.href = `/activity?${new URLSearchParams({ query: `action:internal_job ${jobId}` })}`;
  const summary = document.querySelector('[data-rotation-summary]');
  try {
    const reply = await call('search_activity', { query: `action:internal_job ${jobId}`, limit: 1 });
    const report = reply.rows?.[0]?.job || {};
    const ok = report.code === 0;
    summary.className = `result-line ${ok ? 'ok' : 'danger'}`;
    summary.textContent = `${ok ? 'Done' : 'Failed'}: ${report.description || 'the rotation ended'}. `
      + 'The scheduler stays paused until you resume it.';
    const details = document.querySelector('[data-rotation-details]');
    details.textContent = report.details || '';
    details.hidden = !report.details;
  } catch (error) {
    summary.className = 'result-line';
    summary.textContent = `The rotation ended; its report could not be read (${error.message}).`;
  }
  result.focus?.();
}

async function follow(jobId) {
  let delay = POLL_MS;
  for (;;) {
    try {
      const reply = await call('get_internal_jobs', {});
      const job = (reply.rows || []).find((row) => row.id === jobId);
      if (!job) break;
      showProgress(job);
      delay = POLL_MS;
    } catch (error) {
      if (error.code === 'session') return;
      setText('[data-rotation-status]', 'Lost contact with the conductor; retrying…');
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
    await new Promise((resolve) => { setTimeout(resolve, delay); });
  }
  await showResult(jobId);
}

if (form) {
  form.addEventListener('api:success', (event) => {
    form.reset();
    form.hidden = true;
    showProgress({ progress: 0, status: 'Starting…' });
    follow(event.detail.data.id);
  });
}
if (data.rotation) {
  if (form) form.hidden = true;
  showProgress(data.rotation);
  follow(data.rotation.id);
}

const download = document.querySelector('[data-backup-download]');
if (download) {
  download.addEventListener('click', async () => {
    const scope = document.querySelector('input[name="backup-scope"]:checked')?.value || 'config';
    const params = scope === 'all' ? { lists: 'all', indexes: INDEXES } : { lists: 'all' };
    download.disabled = true;
    try {
      const reply = await call('get_transfer_token', params);
      window.location.assign(`/api/app/admin_export_data?${new URLSearchParams({ token: reply.token })}`);
      notice('The backup download has started.', 'ok');
    } catch (error) {
      notice(error.message, 'danger');
    } finally {
      download.disabled = false;
    }
  });
}
