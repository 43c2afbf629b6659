// The secret page's Decrypt: ask first, call decrypt_secret (audited as secret_access), show the
// values, and take them out of the page again when the panel closes, the page is left, or two
// minutes pass. Values live only in the text boxes' `value` properties while shown (never in an
// attribute, a notice or the console), and nothing keeps a reference to them afterwards.

import { call } from '../api.js';
import { confirmDialog, copyText, el, notice } from '../dom.js';

const button = document.querySelector('[data-decrypt]');
const panel = document.querySelector('[data-secret-panel]');
const rows = document.querySelector('[data-secret-rows]');
const hide = document.querySelector('[data-secret-hide]');
const accessNote = document.querySelector('[data-access-note]');
const SHOW_MS = 120000;
let timer = 0;

function valueRow(field, index) {
  const id = `secret-value-${index}`;
  const lines = String(field.value).split('\n').length;
  const box = el('textarea', { id, class: 'mono', readonly: true, rows: Math.min(Math.max(lines, 1), 8),
    spellcheck: 'false', autocomplete: 'off', 'data-secret-value': field.name });
  box.value = field.value;
  const copy = el('button', { type: 'button', class: 'btn small', 'aria-label': `Copy ${field.name}` }, 'Copy');
  copy.addEventListener('click', async () => {
    notice(await copyText(box.value, box) ? `${field.name} copied to the clipboard.` : 'Copy failed: select the text and copy it by hand.',
      'ok');
  });
  return el('div', { class: 'secret-row' }, el('label', { for: id }, el('code', {}, field.name)), box, copy);
}

function clearValues() {
  clearTimeout(timer);
  rows.replaceChildren();
  panel.hidden = true;
}

function closePanel() {
  clearValues();
  button.focus();
}

function showValues(fields) {
  rows.replaceChildren(...fields.map(valueRow));
  if (!fields.length) rows.append(el('p', { class: 'empty' }, 'This secret has no variables.'));
  panel.hidden = false;
  panel.focus();
  clearTimeout(timer);
  timer = setTimeout(clearValues, SHOW_MS);
}

async function decrypt() {
  const { id, title } = JSON.parse(button.dataset.params);
  const question = `Show the values of “${title}”? The decryption is recorded in the activity log with your user name.`;
  if (!(await confirmDialog(question, { confirmLabel: 'Decrypt', danger: true }))) return;
  button.disabled = true;
  try {
    const reply = await call('decrypt_secret', { id });
    showValues(reply.fields || []);
    if (accessNote) accessNote.hidden = false;
  } catch (error) {
    if (error.code === 'session') window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
    else notice(error.message, 'danger');
  } finally {
    button.disabled = false;
  }
}

if (button && panel) {
  button.addEventListener('click', decrypt);
  hide.addEventListener('click', closePanel);
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closePanel();
  });
  // Leaving the page (or the back/forward cache keeping it) must not keep values around.
  window.addEventListener('pagehide', clearValues);
}
