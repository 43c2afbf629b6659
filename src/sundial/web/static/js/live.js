// The page's end of the live channel (/api/live, docs/api.md "Live updates"): one WebSocket that
// reconnects by itself. The browser's session cookie authenticates it; the server checks that
// the page is ours (Origin). After each (re)connection the page gets `onOpen(reconnected)` and
// subscribes again, having re-read what it shows over REST when it was away, so nothing missed
// while disconnected stays missing. Reconnects back off from 1 s to 15 s (with jitter). The
// server pings every 20 s; a socket silent for a minute is taken for dead and replaced.
// If the socket cannot be opened at all (never once connected, twice refused), the page is
// told through `onUnavailable` and falls back to polling the REST API.

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;
const SILENCE_MS = 60000;
const FAILURES_BEFORE_FALLBACK = 2;
const CLOSE_SESSION = 4401;

export function liveUrl() {
  return `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/api/live`;
}

export function toLogin() {
  window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
}

export class LiveSocket {
  // handlers: onOpen(reconnected), onMessage(message), onState(connected), onUnavailable()
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.delay = MIN_DELAY_MS;
    this.everOpened = false;
    this.failures = 0;
    this.stopped = false;
    this.lastSeen = Date.now();
    this.watchdog = 0;
  }

  start() {
    this.connect();
    this.watchdog = setInterval(() => {
      if (this.ws && this.ws.readyState === WebSocket.OPEN && Date.now() - this.lastSeen > SILENCE_MS) this.ws.close();
    }, SILENCE_MS / 4);
    window.addEventListener('pagehide', () => this.stop());
    return this;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    if (this.ws) this.ws.close(1000);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  subscribe(topic, extra = {}) {
    this.send({ cmd: 'subscribe', topic, ...extra });
  }

  connect() {
    let ws;
    try {
      ws = new WebSocket(liveUrl());
    } catch {
      this.unavailable();
      return;
    }
    this.ws = ws;
    let helloSeen = false;
    ws.addEventListener('message', (event) => {
      this.lastSeen = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'ping') return;
      if (message.type === 'hello') {
        helloSeen = true;
        const reconnected = this.everOpened;
        this.everOpened = true;
        this.failures = 0;
        this.delay = MIN_DELAY_MS;
        this.handlers.onState?.(true);
        this.handlers.onOpen?.(reconnected);
        return;
      }
      if (message.type === 'error' && message.code === 'session') return; // the close (4401) follows
      this.handlers.onMessage?.(message);
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (event.code === CLOSE_SESSION) {
        this.stopped = true;
        toLogin();
        return;
      }
      if (!helloSeen && !this.everOpened && ++this.failures >= FAILURES_BEFORE_FALLBACK) {
        this.unavailable();
        return;
      }
      if (this.everOpened) this.handlers.onState?.(false);
      const wait = this.delay + Math.random() * this.delay * 0.3;
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
      setTimeout(() => { if (!this.stopped) this.connect(); }, wait);
    });
  }

  unavailable() {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.handlers.onUnavailable?.();
  }
}
