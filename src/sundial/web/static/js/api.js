// A small client of Sundial's verb API: JSON in, the envelope out, errors as exceptions.
// Cookie sessions must prove they come from our own pages, so every call sends the CSRF
// token that the server embedded in the page's <meta name="csrf-token">.

const VERB_NAME = /^\w+$/;
const NAMESPACES = new Set(['app', 'user']);

export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

// After logging in from a page rendered without a session, later calls need the new token.
export function setCsrfToken(token) {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && token) meta.content = token;
}

// The unversioned path: refusals come back as HTTP 200 with a code in the envelope (as xyOps
// does without /v1), so an expected "no" (a validation error, a wrong password) is not logged
// by the browser as a failed request; the envelope's code is what the UI reads anyway.
export function verbUrl(verb, ns = 'app') {
  if (!VERB_NAME.test(verb) || !NAMESPACES.has(ns)) throw new ApiError('client', `Not an API verb: ${ns}/${verb}`);
  return `/api/${ns}/${verb}`;
}

export async function call(verb, params = {}, { ns = 'app' } = {}) {
  let response;
  try {
    response = await fetch(verbUrl(verb, ns), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
      body: JSON.stringify(params),
    });
  } catch {
    throw new ApiError('network', 'The conductor could not be reached. Check the connection and try again.');
  }
  let data;
  try {
    data = await response.json();
  } catch {
    throw new ApiError('http', `The conductor sent an unexpected reply (HTTP ${response.status}).`);
  }
  if (data.code !== 0) throw new ApiError(String(data.code), data.description || 'The request failed.');
  return data;
}
