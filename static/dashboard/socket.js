// One WebSocket per page, kept alive: backoff, a watchdog, and the contract's close codes.
//
// The page supplies ``url()`` (called at every (re)connect, so it can carry ``since``)
// and ``onMessage``. The socket reports its state to ``onState``: connecting, live,
// reconnecting, offline, gone. Close codes: 4401 → the login page; 4403/4404 → gone (no
// retry); 4409 (too slow to read) → reconnect at once; anything else → backoff.

const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_GONE = 4404;
const CLOSE_FLOOD = 4408;
const CLOSE_TOO_SLOW = 4409;
// The server sends a heartbeat after 20 s of silence: twice that with nothing means dead.
const SILENCE_PING_MS = 30_000;
const SILENCE_DEAD_MS = 45_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class LiveSocket {
  constructor({ url, onMessage, onState, onOpen, onAuthLost }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onAuthLost = onAuthLost || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = 0;
    this.stopped = false;
    this.lastMessageAt = 0;
    this.state = "idle";
    this.retryAt = 0;
    this.reconnects = 0;
    this.watchdog = setInterval(() => this.checkSilence(), 5_000);
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.state === "reconnecting") this.retryNow();
    });
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop(state = "offline") {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000);
    }
    this.setState(state);
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    const url = new URL(this.url(), location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    this.setState(this.attempt === 0 && this.reconnects === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(url.toString());
    } catch (err) {
      console.error(err);
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.lastMessageAt = Date.now();
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
    };
    ws.onmessage = (message) => {
      this.lastMessageAt = Date.now();
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        console.warn("unparseable socket message");
        return;
      }
      if (data.type === "snapshot") {
        // The server answers with a snapshot only once it accepted us: we are live.
        this.attempt = 0;
        this.setState("live");
        this.onOpen();
      }
      this.onMessage(data);
    };
    ws.onclose = (event) => this.closed(ws, event);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.stopped) return;
    switch (event.code) {
      case CLOSE_UNAUTHENTICATED:
        this.stop("offline");
        this.onAuthLost();
        return;
      case CLOSE_FORBIDDEN:
      case CLOSE_GONE:
        this.stop("gone");
        return;
      case CLOSE_TOO_SLOW:
        this.reconnects += 1;
        this.connect();
        return;
      case CLOSE_FLOOD:
      default:
        this.reconnects += 1;
        this.scheduleRetry();
    }
  }

  scheduleRetry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("reconnecting", { attempt: this.attempt, retryAt: this.retryAt });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (this.stopped || this.ws) return;
    this.connect();
  }

  /** Drop this connection and resume (a gap was seen, or the socket went silent). */
  reconnect() {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null;
    this.reconnects += 1;
    if (ws) {
      ws.onclose = null;
      ws.close(4000, "resync");
    }
    this.connect();
  }

  send(payload) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(payload));
      return true;
    }
    return false;
  }

  checkSilence() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const silent = Date.now() - this.lastMessageAt;
    if (silent > SILENCE_DEAD_MS) this.reconnect();
    else if (silent > SILENCE_PING_MS) this.send({ type: "ping" });
  }
}
