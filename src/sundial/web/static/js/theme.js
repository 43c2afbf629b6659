// Light and dark mode. Without a choice the stylesheet follows prefers-color-scheme; a choice
// is kept in a cookie so the server can put it on <html> and the page never flashes.

const COOKIE = 'sundial_theme';
const THEMES = ['light', 'dark'];
const YEAR = 365 * 86400;

export function chosenTheme() {
  const theme = document.documentElement.dataset.theme || '';
  return THEMES.includes(theme) ? theme : '';
}

export function effectiveTheme() {
  return chosenTheme() || (window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
}

export function setTheme(theme) {
  const root = document.documentElement;
  if (THEMES.includes(theme)) {
    root.dataset.theme = theme;
    document.cookie = `${COOKIE}=${theme}; Path=/; Max-Age=${YEAR}; SameSite=Lax`;
  } else {
    delete root.dataset.theme;
    document.cookie = `${COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`;
  }
  syncControls();
}

function syncControls() {
  const dark = effectiveTheme() === 'dark';
  for (const toggle of document.querySelectorAll('[data-theme-toggle]')) {
    toggle.setAttribute('aria-pressed', String(dark));
    toggle.title = dark ? 'Switch to light mode' : 'Switch to dark mode';
  }
  for (const select of document.querySelectorAll('[data-theme-select]')) select.value = chosenTheme();
}

export function initTheme() {
  for (const toggle of document.querySelectorAll('[data-theme-toggle]')) {
    toggle.addEventListener('click', () => setTheme(effectiveTheme() === 'dark' ? 'light' : 'dark'));
  }
  for (const select of document.querySelectorAll('[data-theme-select]')) {
    select.addEventListener('change', () => setTheme(select.value));
  }
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', syncControls);
  syncControls();
}
