// The WebSocket feed: one connection, reconnected with exponential backoff, its
// subscriptions renewed after each reconnect, each message handed to its channel's handler.

import { API } from "./api.js";

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const SILENCE_MS = 15000; // heartbeats come every 5 s: this long without a message is a dead link

export class Feed {
  // onState(kind, text): kind is connecting, live or offline.
  // onAuth(userId): the key was accepted (userId null for the admin key).
  // onAuthError(error): the key was refused ({code, message}).
  constructor({ onState, onAuth, onAuthError }) {
    this.onState = onState;
    this.onAuth = onAuth;
    this.onAuthError = onAuthError;
    this.handlers = new Map(); // channel -> handler(message)
    this.socket = null;
    this.key = "";
    this.authPending = false;
    this.authenticated = false;
    this.backoff = BACKOFF_MIN_MS;
    this.retryTimer = null;
    this.silenceTimer = null;
  }

  // Receive `channel` through `handler`, now and after every reconnect. The private
  // `orders` channel is asked for once the key is accepted.
  subscribe(channel, handler) {
    this.handlers.set(channel, handler);
    if (channel !== "orders" || this.authenticated) {
      this.send({ op: "subscribe", channels: [channel] });
    }
  }

  unsubscribe(channel) {
    if (this.handlers.delete(channel)) this.send({ op: "unsubscribe", channels: [channel] });
  }

  // A gap: drop the subscription and take it again, for a fresh snapshot.
  resubscribe(channel) {
    this.send({ op: "unsubscribe", channels: [channel] });
    this.send({ op: "subscribe", channels: [channel] });
  }

  // Start over on a fresh connection with `key` ("" for none), so that the orders channel
  // is the new user's.
  useKey(key) {
    this.key = key;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
    this.backoff = BACKOFF_MIN_MS;
    this.connect();
  }

  isOpen() {
    return Boolean(this.socket) && this.socket.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (this.isOpen()) this.socket.send(JSON.stringify(message));
  }

  connect() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${API}/ws`);
    this.socket = socket;
    this.authenticated = false;
    this.authPending = false;
    this.onState("connecting", "connecting");
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.onState("live", "live");
      this.watchSilence(socket);
      if (this.key) {
        this.authPending = true; // answered in order: the next error or authenticated is its
        this.send({ op: "auth", api_key: this.key });
      }
      const channels = [...this.handlers.keys()].filter((c) => c !== "orders");
      if (channels.length > 0) this.send({ op: "subscribe", channels });
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.backoff = BACKOFF_MIN_MS; // a working link: the next drop retries quickly
      this.watchSilence(socket);
      this.dispatch(JSON.parse(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return; // replaced on purpose
      this.dropped(event.reason || `closed (${event.code})`);
    };
  }

  watchSilence(socket) {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      socket.close();
      this.dropped("no heartbeat");
    }, SILENCE_MS);
  }

  // The link is gone: say so, and retry with exponential backoff and jitter.
  dropped(why) {
    clearTimeout(this.silenceTimer);
    this.socket = null;
    this.authenticated = false;
    this.authPending = false;
    const delay = Math.round(this.backoff * (0.5 + Math.random() / 2));
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.onState("offline", `offline: ${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  dispatch(m) {
    switch (m.type) {
      case "heartbeat":
      case "pong":
      case "subscribed":
      case "unsubscribed":
        return;
      case "authenticated":
        this.authPending = false;
        this.authenticated = Boolean(m.user_id);
        if (this.authenticated && this.handlers.has("orders")) {
          this.send({ op: "subscribe", channels: ["orders"] });
        }
        this.onAuth(m.user_id || null);
        return;
      case "error":
        if (this.authPending) {
          this.authPending = false;
          this.onAuthError(m.error || {});
        } else {
          console.warn("feed:", (m.error && m.error.message) || m);
        }
        return;
      default: {
        const handler = this.handlers.get(m.channel);
        if (handler) handler(m);
      }
    }
  }
}
