// The job page's Resume form (a job held by a suspend action): `resume_job` with the job's id and
// only the parameters the person changed (the API merges them into the job's params). A link
// ending in #resume (the suspension e-mail's button) brings focus straight to the button.

import { paramInputs, readParam } from './params.js';

const form = document.querySelector('[data-testid="resume-form"]');
const box = form?.querySelector('[data-resume-params]');

function snapshot() {
  const values = new Map();
  for (const input of paramInputs(box)) {
    try { values.set(input, JSON.stringify(readParam(input))); } catch { values.set(input, undefined); }
  }
  return values;
}

const initial = snapshot();

function changedParams() {
  const params = {};
  for (const input of paramInputs(box)) {
    const value = readParam(input); // throws on bad JSON, naming the parameter
    if (JSON.stringify(value) !== initial.get(input)) params[input.dataset.param] = value;
  }
  return params;
}

function showError(message, field) {
  const error = form.querySelector('.form-error');
  error.textContent = message;
  error.hidden = false;
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
  }
}

if (form) {
  form.addEventListener('api:submit', (event) => {
    for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
    try {
      const params = changedParams();
      if (Object.keys(params).length) event.detail.params.params = params;
    } catch (error) {
      event.preventDefault();
      showError(error.message, error.field);
    }
  });
  // After the load's own scroll to the #resume fragment, which would otherwise take the focus back.
  const focusResume = () => setTimeout(() => form.querySelector('[type=submit]').focus(), 0);
  if (window.location.hash === '#resume') {
    if (document.readyState === 'complete') focusResume();
    else window.addEventListener('load', focusResume, { once: true });
  }
}
