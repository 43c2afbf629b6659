// DOM helpers. Text always goes in through textContent or text nodes, never as HTML,
// so nothing a user typed can become markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const NOTICE_MS = 6000;

export function notice(message, tone = 'info') {
  const region = document.getElementById('notices');
  if (!region || !message) return;
  const close = el('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss' }, '×');
  const item = el('div', { class: `toast ${tone}` }, el('span', {}, message), close);
  close.addEventListener('click', () => item.remove());
  region.append(item);
  if (tone !== 'danger') setTimeout(() => item.remove(), NOTICE_MS);
}

const FLASH_KEY = 'sundial.flash';

// A message that survives the reload or navigation that usually follows a change.
export function flash(message) {
  if (message) sessionStorage.setItem(FLASH_KEY, message);
}

export function showFlash() {
  const message = sessionStorage.getItem(FLASH_KEY);
  if (message) {
    sessionStorage.removeItem(FLASH_KEY);
    notice(message, 'ok');
  }
}

// A modal yes/no question. The native <dialog> traps focus and closes on Escape.
export function confirmDialog(message, { confirmLabel = 'Confirm', danger = false } = {}) {
  return new Promise((resolve) => {
    const cancel = el('button', { type: 'submit', value: 'cancel', class: 'btn', autofocus: true }, 'Cancel');
    const ok = el('button', { type: 'submit', value: 'ok', class: `btn ${danger ? 'danger' : 'primary'}` }, confirmLabel);
    const dialog = el('dialog', { class: 'confirm', 'aria-label': 'Confirm' },
      el('form', { method: 'dialog' }, el('p', {}, message), el('div', { class: 'form-actions' }, cancel, ok)));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// Clipboard API where the page is a secure context; selection + execCommand elsewhere
// (plain-HTTP intranet installs are common and must still be able to copy a key).
export async function copyText(text, source) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch { /* fall through to the selection method */ }
  }
  if (source && typeof source.select === 'function') {
    source.focus();
    source.select();
    return document.execCommand('copy');
  }
  return false;
}

export function localizeTimes(root = document) {
  for (const node of root.querySelectorAll('time[data-epoch]')) {
    const date = new Date(Number(node.dataset.epoch) * 1000);
    if (Number.isNaN(date.getTime())) continue;
    const options = { dateStyle: 'medium', timeStyle: node.hasAttribute('data-seconds') ? 'medium' : 'short' };
    node.title = date.toISOString();
    node.textContent = date.toLocaleString(undefined, options);
  }
}
