// "Run" buttons (macro `run_button`): the API answers with the new job's id; open its page.

import { flash } from '../dom.js';

document.addEventListener('api:success', (event) => {
  const button = event.target.closest?.('[data-run-job]');
  const jobId = event.detail.data.id;
  if (!button || !jobId) return;
  event.preventDefault();
  flash('Job started.');
  window.location.assign(`/jobs/${encodeURIComponent(jobId)}`);
});
