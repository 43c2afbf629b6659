// Declarative API forms and buttons, so most pages need no JavaScript of their own.
//
//   <form data-verb="create_tag" data-ns="app" data-then="reload|go:/path|none" data-flash="Saved.">
//   <button data-verb="delete_tag" data-params='{"id":"x"}' data-confirm="Sure?" data-then="go:/tags">
//
// Each control's data-type says how it becomes JSON: string (default), int, number, bool,
// flag (1/0), list (checked values), flags ({value: true} for checked ones), json; a
// <fieldset data-pairs="name"> becomes a [{name, value}] list (pairs.js).
// Pages can hook in: the form fires a cancelable `api:submit` (detail.params may be edited)
// and the form or button fires a cancelable `api:success` (detail.data) before the follow-up,
// or `api:error` (detail.error, with .code and .message) after showing a refusal.

import { call } from './api.js';
import { confirmDialog, flash, notice } from './dom.js';
import { bindPairs, readAllPairs } from './pairs.js';

export function readForm(form) {
  const params = {};
  for (const input of form.elements) {
    if (!input.name || input.disabled || ['submit', 'button', 'reset'].includes(input.type)) continue;
    const type = input.dataset.type || 'string';
    if (input.type === 'checkbox') {
      readCheckbox(params, input, type);
    } else if (input.tagName === 'SELECT' && input.multiple) {
      params[input.name] = [...input.selectedOptions].map((option) => option.value);
    } else if (!(input.value === '' && input.hasAttribute('data-skip-empty'))) {
      params[input.name] = convert(input.value, type);
    }
  }
  readAllPairs(form, params);
  return params;
}

function readCheckbox(params, input, type) {
  if (type === 'list') {
    params[input.name] ??= [];
    if (input.checked) params[input.name].push(input.value);
  } else if (type === 'flags') {
    params[input.name] ??= {};
    if (input.checked) params[input.name][input.value] = true;
  } else {
    params[input.name] = type === 'flag' ? Number(input.checked) : input.checked;
  }
}

function convert(raw, type) {
  if (type === 'int') return Number.parseInt(raw, 10);
  if (type === 'number') return Number(raw);
  if (type === 'json') return JSON.parse(raw);
  return raw;
}

// <input data-match="new_password"> must equal the named field (a repeat-password box).
function matchesHold(form) {
  for (const input of form.querySelectorAll('[data-match]')) {
    const other = form.elements.namedItem(input.dataset.match);
    input.setCustomValidity(other && other.value !== input.value ? 'The two passwords differ.' : '');
  }
  return form.reportValidity();
}

function showError(form, message) {
  const box = form && form.querySelector('.form-error');
  if (!box) {
    if (message) notice(message, 'danger');
    return;
  }
  box.textContent = message;
  box.hidden = !message;
}

// Only same-site paths: `go:` targets come from our templates, but stay defensive.
function followUp(source) {
  const then = source.dataset.then || 'reload';
  if (then === 'none') return;
  flash(source.dataset.flash);
  if (then.startsWith('go:/') && !then.startsWith('go://')) window.location.assign(then.slice(3));
  else window.location.reload();
}

function toLogin() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

export async function runVerb(source, params, form = null) {
  const busy = form ? form.querySelector('[type=submit]') : source;
  if (busy) busy.disabled = true;
  source.setAttribute('aria-busy', 'true');
  showError(form, '');
  try {
    const data = await call(source.dataset.verb, params, { ns: source.dataset.ns || 'app' });
    const done = new CustomEvent('api:success', { cancelable: true, bubbles: true, detail: { data, params } });
    if (source.dispatchEvent(done)) followUp(source);
    return data;
  } catch (error) {
    if (error.code === 'session') toLogin();
    else {
      showError(form, error.message);
      source.dispatchEvent(new CustomEvent('api:error', { bubbles: true, detail: { error, params } }));
    }
    return null;
  } finally {
    if (busy) busy.disabled = false;
    source.removeAttribute('aria-busy');
  }
}

async function onSubmit(event) {
  const form = event.target.closest('form[data-verb]');
  if (!form) return;
  event.preventDefault();
  if (form.getAttribute('aria-busy') || !matchesHold(form)) return;
  let params;
  try {
    params = readForm(form);
  } catch {
    showError(form, 'A field holds text that is not valid JSON.');
    return;
  }
  const before = new CustomEvent('api:submit', { cancelable: true, bubbles: true, detail: { params } });
  if (!form.dispatchEvent(before)) return;
  if (form.dataset.confirm && !(await confirmDialog(form.dataset.confirm))) return;
  await runVerb(form, before.detail.params, form);
}

async function onClick(event) {
  const button = event.target.closest('button[data-verb]');
  if (!button || button.form?.dataset.verb || button.getAttribute('aria-busy')) return;
  let params = {};
  try {
    params = JSON.parse(button.dataset.params || '{}');
  } catch {
    notice('This button is misconfigured (bad parameters).', 'danger');
    return;
  }
  const danger = button.classList.contains('danger');
  if (button.dataset.confirm
      && !(await confirmDialog(button.dataset.confirm, { confirmLabel: button.textContent.trim(), danger }))) return;
  await runVerb(button, params);
}

export function bindForms(root = document) {
  bindPairs(root);
  root.addEventListener('submit', onSubmit);
  root.addEventListener('click', onClick);
  root.addEventListener('input', (event) => {
    if (event.target.matches?.('[data-match]')) event.target.setCustomValidity('');
  });
}
