// API keys: the create reply carries the plain key, shown here once with a copy button.

const form = document.querySelector('form[data-verb="create_api_key"]');
const panel = document.getElementById('new-key');
const output = document.getElementById('new-key-value');

form.addEventListener('api:success', (event) => {
  output.value = event.detail.data.plain_key;
  form.reset();
  const details = form.closest('details');
  details.open = false;
  details.hidden = true; // one thing at a time: the key, then Done reloads the list
  panel.hidden = false;
  panel.focus();
  output.select();
});
