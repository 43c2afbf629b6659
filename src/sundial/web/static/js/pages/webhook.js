// The web hook page's Test button: sends the form as it is now (saved or not) to test_web_hook
// and shows what came back. Text goes in through textContent only; the API has already scrubbed
// secret values from the description and details.

import { call } from '../api.js';
import { readForm } from '../forms.js';

const button = document.querySelector('[data-hook-test]');
const form = document.querySelector('form[data-verb="update_web_hook"]');
const box = document.querySelector('[data-hook-result]');
const summary = document.querySelector('[data-hook-summary]');
const details = document.querySelector('[data-hook-details]');

function show(ok, title, text, more = '') {
  box.hidden = false;
  summary.className = `result-line ${ok ? 'ok' : 'danger'}`;
  summary.replaceChildren(Object.assign(document.createElement('strong'), { textContent: title }), ` ${text}`);
  details.textContent = more;
  details.hidden = !more;
}

async function runTest() {
  if (!form.reportValidity()) return;
  let params;
  try {
    params = readForm(form);
  } catch {
    show(false, 'Not sent:', 'a field holds text that is not valid JSON.');
    return;
  }
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    const reply = await call('test_web_hook', params);
    show(true, 'Success:', reply.result?.description || 'the request was sent.', reply.result?.details || '');
  } catch (error) {
    if (error.code === 'session') window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
    else show(false, 'Failed:', error.message);
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

if (button && form) button.addEventListener('click', runTest);
