// "Add a server": get_satellite_token answers with a short-lived install token, shown here once
// as the one-line install command (docs/satellites.md). Reloading the page drops it.

const form = document.querySelector('form[data-verb="get_satellite_token"]');
const panel = document.getElementById('install-command');
const output = document.getElementById('install-command-text');
const expiry = document.querySelector('[data-token-expiry]');

export function installCommand(baseUrl, token) {
  const base = String(baseUrl || window.location.origin).replace(/\/+$/, '');
  return `curl -s "${base}/api/app/satellite/install?t=${encodeURIComponent(token)}" | sh`;
}

if (form && panel) {
  form.addEventListener('api:success', (event) => {
    const { data, params } = event.detail;
    output.value = installCommand(data.base_url, data.token);
    const seconds = Number(params.expires) || 86400;
    if (expiry) expiry.textContent = `at ${new Date(Date.now() + seconds * 1000).toLocaleString()}`;
    form.hidden = true;
    panel.hidden = false;
    panel.focus();
    output.select();
  });
}
