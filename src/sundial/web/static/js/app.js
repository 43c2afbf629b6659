// Loaded by every page: theme, navigation, declarative API forms and buttons, copy buttons,
// local times and messages carried across a reload. Page modules add only what is specific.

import { call } from './api.js';
import { copyText, localizeTimes, notice, showFlash } from './dom.js';
import { bindForms } from './forms.js';
import { initTheme } from './theme.js';

function initNav() {
  const toggle = document.querySelector('[data-nav-toggle]');
  if (!toggle) return;
  const setOpen = (open) => {
    document.body.classList.toggle('nav-open', open);
    toggle.setAttribute('aria-expanded', String(open));
  };
  toggle.addEventListener('click', () => setOpen(!document.body.classList.contains('nav-open')));
  document.addEventListener('click', (event) => {
    const open = document.body.classList.contains('nav-open');
    if (open && !event.target.closest('#sidenav, [data-nav-toggle]')) setOpen(false);
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && document.body.classList.contains('nav-open')) {
      setOpen(false);
      toggle.focus();
    }
  });
}

function initButtons() {
  document.addEventListener('click', async (event) => {
    const target = event.target.closest('[data-logout], [data-copy], [data-reload]');
    if (!target) return;
    if (target.hasAttribute('data-logout')) {
      try { await call('logout', {}, { ns: 'user' }); } catch { /* the session may be gone already */ }
      window.location.assign('/login');
    } else if (target.hasAttribute('data-copy')) {
      const source = document.querySelector(target.dataset.copy);
      const text = source ? (source.value ?? source.textContent) : '';
      notice(await copyText(text, source) ? 'Copied to the clipboard.' : 'Copy failed: select the text and copy it by hand.',
        'ok');
    } else {
      window.location.reload();
    }
  });
}

// xyOps-style links (`/#Job?id=…`, as in notification e-mails and web hook texts; `&resume=1`
// for a suspended job) open the job page, at its Resume form when asked.
function followHashLink() {
  const match = /^#Job\?(.*)$/.exec(window.location.hash);
  if (!match || window.location.pathname !== '/') return false;
  const query = new URLSearchParams(match[1]);
  const id = query.get('id');
  if (!id) return false;
  window.location.replace(`/jobs/${encodeURIComponent(id)}${query.get('resume') ? '#resume' : ''}`);
  return true;
}

followHashLink();
initTheme();
initNav();
initButtons();
bindForms();
localizeTimes();
showFlash();
