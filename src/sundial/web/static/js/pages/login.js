// The login page: log in through the API, then either go on or, when the account still has
// its default password, ask for a new one right here.

import { setCsrfToken } from '../api.js';
import { flash } from '../dom.js';

const loginForm = document.getElementById('login-form');
const prompt = document.getElementById('password-prompt');
const passwordForm = document.getElementById('first-password-form');
let credentials = null;

function destination() {
  const next = loginForm.dataset.next || '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

loginForm.addEventListener('api:submit', (event) => {
  credentials = { username: event.detail.params.username, password: event.detail.params.password };
});

loginForm.addEventListener('api:success', (event) => {
  const { user, csrf_token: token } = event.detail.data;
  setCsrfToken(token);
  if (user && user.force_password_change) {
    loginForm.hidden = true;
    document.getElementById('login-title').hidden = true;
    prompt.hidden = false;
    credentials.username = user.username;
    passwordForm.elements.namedItem('username').value = user.username;
    passwordForm.querySelector('input[type=password]').focus();
  } else {
    window.location.assign(destination());
  }
});

// The old password is the one just typed; it stays in memory rather than in the form.
passwordForm.addEventListener('api:submit', (event) => {
  Object.assign(event.detail.params, { username: credentials.username, old_password: credentials.password });
});

passwordForm.addEventListener('api:success', () => {
  credentials = null;
  flash('Password changed.');
  window.location.assign(destination());
});
