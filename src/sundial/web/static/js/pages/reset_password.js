// The password reset page. Without a key it asks for username and e-mail (forgot_password);
// with `#h=<key>` (the e-mailed link) it asks for the new password (reset_password).
// The key lives in the URL fragment, which the browser never sends to any server.

const fragment = new URLSearchParams(window.location.hash.slice(1));
const key = fragment.get('h') || '';
const forgotForm = document.getElementById('forgot-form');

if (/^[0-9a-fA-F]{64}$/.test(key)) {
  document.getElementById('forgot-section').hidden = true;
  document.getElementById('reset-section').hidden = false;
  const form = document.getElementById('reset-form');
  form.elements.namedItem('key').value = key;
  // Drop the key from the address bar and history once it is in the form.
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  const username = form.elements.namedItem('username');
  (username.value ? form.elements.namedItem('new_password') : username).focus();
} else {
  forgotForm.elements.namedItem(forgotForm.elements.namedItem('username').value ? 'email' : 'username').focus();
}

forgotForm.addEventListener('api:success', () => {
  forgotForm.hidden = true;
  document.getElementById('forgot-sent').hidden = false;
});
