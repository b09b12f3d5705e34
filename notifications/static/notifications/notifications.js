/*
 * Live notifications for the bell rendered by {% notifications_bell %}.
 *
 * No globals, no build step: every [data-notifications] root is wired on load
 * and configured by its data-* attributes. The stream is read with fetch() and
 * parsed here (Server-Sent Events), so the client can send Last-Event-ID on
 * every connect, read the status code, honour Retry-After and back off with
 * jitter. All text goes into the page as text, never as HTML.
 */
(() => {
  "use strict";

  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const IDLE_MS = 60000; // no byte, not even a heartbeat, for this long: the link is dead
  const TOASTS_MAX = 3;
  const TOAST_MS = 6000;
  const LIST_MAX = 50;
  const LEVELS = ["success", "info", "warning", "error"];
  const STATUS_TEXT = {
    connecting: "connecting",
    connected: "connected",
    reconnecting: "reconnecting",
    "signed-out": "signed out",
  };

  // -- Server-Sent Events --------------------------------------------------

  /**
   * A parser for the text/event-stream format. Feed it decoded text in chunks
   * of any size; it calls onEvent(type, data) per event and onId(id) per id.
   */
  function sseParser(onEvent, onId) {
    let buffer = "";
    let skipLF = false; // the last chunk ended in CR, maybe half of a CRLF
    let type = "";
    let data = [];

    function line(text) {
      if (text === "") {
        if (data.length) onEvent(type || "message", data.join("\n"));
        type = "";
        data = [];
        return;
      }
      if (text[0] === ":") return; // a comment: the heartbeat
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) onId(value);
    }

    return (chunk) => {
      const text = skipLF && chunk[0] === "\n" ? chunk.slice(1) : chunk;
      skipLF = text.endsWith("\r");
      const lines = (buffer + text).split(/\r\n|\r|\n/);
      buffer = lines.pop();
      lines.forEach(line);
    };
  }

  // -- small DOM helpers -------------------------------------------------------

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([name, value]) => {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    });
    children.forEach((child) => {
      if (child !== null && child !== undefined && child !== "") node.append(child);
    });
    return node;
  }

  /** A link target that is safe to follow: relative, http or https. */
  function safeUrl(url) {
    if (!url) return null;
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  /** "just now", "5 minutes ago", "yesterday"... for an ISO 8601 timestamp. */
  function ago(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    if (Number.isNaN(seconds)) return iso;
    if (seconds > -45) return "just now";
    const units = [["minute", 60], ["hour", 3600], ["day", 86400], ["week", 604800]];
    let [unit, size] = units[0];
    for (const [name, length] of units) if (-seconds >= length) [unit, size] = [name, length];
    return relative.format(Math.round(seconds / size), unit);
  }

  // -- one bell ------------------------------------------------------------

  class Feed {
    constructor(root, index) {
      const d = root.dataset;
      this.root = root;
      this.config = {
        streamUrl: d.streamUrl,
        listUrl: d.listUrl,
        readUrl: d.readUrl,
        readAllUrl: d.readAllUrl,
        csrfToken: d.csrfToken,
        limit: Number(d.limit) || 10,
        badgeMax: Number(d.badgeMax) || 99,
        desktop: d.desktop === "1" && "Notification" in window,
      };
      this.lastId = d.cursor || "";
      this.attempts = 0;
      this.timer = null;
      this.find = (name) => root.querySelector(`[data-notifications-${name}]`);
      this.list = this.find("list");
      this.seen = new Set(this.items().map((item) => item.dataset.notificationId));
      this.count = Number(this.find("badge").dataset.count) || 0;
      this.wire(index);
    }

    items() {
      return Array.from(this.list.querySelectorAll("[data-notification-id]"));
    }

    // -- the connection --

    async connect() {
      clearTimeout(this.timer);
      const abort = new AbortController();
      const headers = { Accept: "text/event-stream" };
      if (this.lastId) headers["Last-Event-ID"] = this.lastId;
      let response;
      try {
        response = await fetch(this.config.streamUrl, {
          headers, signal: abort.signal, cache: "no-store", credentials: "same-origin",
        });
      } catch (error) {
        return this.retry();
      }
      if (response.status === 401 || response.status === 403) return this.status("signed-out");
      if (response.status === 503) return this.retry(retryAfter(response));
      if (!response.ok || !response.body) return this.retry();
      await this.read(response.body, abort);
      this.retry();
    }

    /** Read the stream until it ends, fails, or stays silent too long. */
    async read(body, abort) {
      const parse = sseParser((type, data) => this.dispatch(type, data), (id) => { this.lastId = id; });
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      let idle = setTimeout(() => abort.abort(), IDLE_MS);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          clearTimeout(idle);
          idle = setTimeout(() => abort.abort(), IDLE_MS);
          parse(value);
        }
      } catch (error) {
        // The server went away or the link died: reconnect below.
      } finally {
        clearTimeout(idle);
      }
    }

    /** Reconnect after ``delay`` ms (plus a little jitter), or a backoff with full jitter. */
    retry(delay) {
      this.status("reconnecting");
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
      const wait = delay === null || delay === undefined
        ? Math.random() * ceiling
        : delay + Math.random() * BACKOFF_MIN_MS;
      this.attempts += 1;
      this.timer = setTimeout(() => this.connect(), wait);
    }

    status(state) {
      this.state = state;
      const node = this.find("status");
      if (!node || node.dataset.state === state) return;
      node.dataset.state = state;
      node.textContent = STATUS_TEXT[state];
    }

    dispatch(type, data) {
      let payload;
      try {
        payload = JSON.parse(data);
      } catch (error) {
        return;
      }
      if (type === "open") {
        this.attempts = 0;
        this.status("connected");
      } else if (type === "notification") {
        this.receive(payload);
      } else if (type === "read") {
        this.applyRead(payload);
      } else if (type === "reset") {
        this.reload();
      }
    }

    // -- what the stream tells --

    /** A new notification: list, badge, toast, desktop; once per id. */
    receive(n) {
      const id = String(n.id);
      if (this.seen.has(id)) return;
      this.seen.add(id);
      this.insert(n);
      if (!n.unread) return; // read meanwhile in another tab: no news
      this.setCount(this.count + 1);
      this.toast(n);
      this.desktop(n);
    }

    applyRead({ ids, unread, deleted, unread_count: count }) {
      const wanted = ids === "all" ? null : new Set((Array.isArray(ids) ? ids : []).map(String));
      const items = this.items().filter((item) => !wanted || wanted.has(item.dataset.notificationId));
      items.forEach((item) => (deleted ? item.remove() : this.markItem(item, unread)));
      if (typeof count === "number") this.setCount(count);
      this.updateEmpty();
    }

    /**
     * The stream could not resume: load the list afresh from the API. What the
     * stream delivered meanwhile, above the list's cursor, stays.
     */
    async reload() {
      const url = new URL(this.config.listUrl, window.location.href);
      url.searchParams.set("page_size", this.config.limit);
      const before = new Set(this.items().map((item) => item.dataset.notificationId));
      let page;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) return;
        page = await response.json();
      } catch (error) {
        return; // the list stays as it was; the next reset or read event tries again
      }
      const listed = new Set(page.results.map((n) => String(n.id)));
      // The answer replaces every item shown before it was asked for; items the
      // stream delivered while it was on its way stay. (The cursor is opaque.)
      this.items().forEach((item) => {
        const id = item.dataset.notificationId;
        if (before.has(id) || listed.has(id)) item.remove();
      });
      const newer = this.items().filter((item) => item.dataset.unread === "1").length;
      page.results.forEach((n) => { this.seen.add(String(n.id)); this.insert(n); });
      this.setCount(page.unread_count + newer);
    }

    // -- the list --

    render(n) {
      const level = LEVELS.includes(n.level) ? n.level : "info";
      const href = safeUrl(n.url);
      const verb = href ? el("a", { class: "ntf-target", href }, n.verb) : n.verb;
      return el(
        "li",
        {
          class: `ntf-item ntf-${level}${n.unread ? " ntf-unread" : ""}`,
          "data-notification-id": n.id,
          "data-unread": n.unread ? "1" : "0",
          tabindex: "0",
        },
        el("span", { class: "ntf-dot", "aria-hidden": "true" }),
        el(
          "span",
          { class: "ntf-body" },
          el("span", { class: "ntf-verb" }, n.actor ? el("span", { class: "ntf-actor" }, n.actor) : null, n.actor ? " " : null, verb),
          n.description ? el("span", { class: "ntf-desc" }, n.description) : null,
          el("time", { class: "ntf-time", datetime: n.created, title: n.created }, ago(n.created)),
        ),
        n.unread ? this.markButton() : null,
      );
    }

    markButton() {
      return el("button", { type: "button", class: "ntf-link", "data-notifications-mark-read": "" }, "Mark read");
    }

    /** Insert newest first (by id, so replays and out-of-order ids land right). */
    insert(n) {
      const id = Number(n.id);
      const after = this.items().find((item) => Number(item.dataset.notificationId) < id);
      this.list.insertBefore(this.render(n), after || null);
      this.items().slice(Math.max(LIST_MAX, this.config.limit)).forEach((item) => item.remove());
      this.updateEmpty();
    }

    markItem(item, unread) {
      item.dataset.unread = unread ? "1" : "0";
      item.classList.toggle("ntf-unread", unread);
      const button = item.querySelector("[data-notifications-mark-read]");
      if (!unread && button) {
        if (item.contains(document.activeElement)) item.focus();
        button.remove();
      }
      if (unread && !button) item.append(this.markButton());
    }

    updateEmpty() {
      const empty = this.find("empty");
      if (empty) empty.hidden = this.items().length > 0;
    }

    setCount(count) {
      this.count = Math.max(0, count);
      const badge = this.find("badge");
      badge.dataset.count = this.count;
      badge.textContent = this.count > this.config.badgeMax ? `${this.config.badgeMax}+` : String(this.count);
      badge.hidden = this.count === 0;
      this.find("bell").setAttribute("aria-label", `Notifications, ${this.count} unread`);
    }

    // -- marking read --

    post(url) {
      return fetch(url, {
        method: "POST",
        headers: { "X-CSRFToken": this.config.csrfToken, Accept: "application/json" },
        credentials: "same-origin",
        keepalive: true, // finishes even when a click on the item's link leaves the page
      }).then((response) => (response.ok ? response.json() : null), () => null);
    }

    async markRead(item) {
      if (item.dataset.unread !== "1") return;
      const url = this.config.readUrl.replace(/\/0\/(?=[^/]*\/?$)/, `/${item.dataset.notificationId}/`);
      this.markItem(item, false);
      const result = await this.post(url);
      if (result) this.setCount(result.unread_count);
      else this.markItem(item, true); // not marked after all: show it as it is
    }

    async markAllRead() {
      const result = await this.post(this.config.readAllUrl);
      if (result) this.applyRead({ ids: "all", unread: false, deleted: false, unread_count: result.unread_count });
    }

    // -- toasts and desktop notifications --

    toast(n) {
      const region = this.find("toasts");
      if (!region) return;
      const level = LEVELS.includes(n.level) ? n.level : "info";
      const close = el("button", { type: "button", class: "ntf-toast-close", "aria-label": "Dismiss" }, "\u00d7");
      const toast = el(
        "div",
        { class: `ntf-toast ntf-${level}`, role: "status", "data-notification-id": n.id },
        el("span", { class: "ntf-toast-text" },
          el("strong", {}, n.actor ? `${n.actor} ${n.verb}` : n.verb),
          n.description ? el("span", {}, n.description) : null),
        close,
      );
      const remove = () => toast.remove();
      close.addEventListener("click", remove);
      setTimeout(remove, TOAST_MS);
      region.append(toast);
      while (region.children.length > TOASTS_MAX) region.firstElementChild.remove();
    }

    desktop(n) {
      if (!this.config.desktop || Notification.permission !== "granted") return;
      const title = n.actor ? `${n.actor} ${n.verb}` : n.verb;
      try {
        // One tag per notification: the tabs of one browser raise it once.
        const shown = new Notification(title, { body: n.description || "", tag: `notification-${n.id}` });
        shown.addEventListener("click", () => { window.focus(); this.open(); });
      } catch (error) {
        // Some browsers only allow notifications from a service worker.
      }
    }

    updateDesktopButton() {
      const button = this.find("desktop");
      if (button) button.hidden = !(this.config.desktop && Notification.permission === "default");
    }

    // -- the panel and the keyboard --

    open() {
      this.find("panel").hidden = false;
      this.find("bell").setAttribute("aria-expanded", "true");
    }

    close(focusBell) {
      if (this.find("panel").hidden) return;
      this.find("panel").hidden = true;
      this.find("bell").setAttribute("aria-expanded", "false");
      if (focusBell) this.find("bell").focus();
    }

    wire(index) {
      const bell = this.find("bell");
      const panel = this.find("panel");
      panel.id = panel.id || `notifications-panel-${index}`;
      bell.setAttribute("aria-controls", panel.id);
      bell.addEventListener("click", () => (panel.hidden ? this.open() : this.close(false)));
      this.list.addEventListener("keydown", (event) => this.onKey(event));
      this.list.addEventListener("click", (event) => this.onClick(event));
      document.addEventListener("keydown", (event) => {
        if (event.key === "Escape") this.close(this.root.contains(document.activeElement));
      });
      document.addEventListener("click", (event) => {
        // composedPath(): the clicked "Mark read" button is gone from the page by now.
        if (!event.composedPath().includes(this.root)) this.close(false);
      });
      const readAll = this.find("read-all");
      if (readAll) readAll.addEventListener("click", () => this.markAllRead());
      const desktop = this.find("desktop");
      if (desktop) {
        desktop.addEventListener("click", () => Notification.requestPermission().then(() => this.updateDesktopButton()));
      }
      this.updateDesktopButton();
      this.refreshTimes();
      setInterval(() => this.refreshTimes(), 60000);
    }

    onClick(event) {
      const item = event.target.closest("[data-notification-id]");
      if (item) this.markRead(item); // "Mark read", the item's link, or the item itself
    }

    onKey(event) {
      if (event.key === "Enter" && event.target.matches("[data-notification-id]")) {
        event.preventDefault();
        this.markRead(event.target);
        const link = event.target.querySelector("a[href]");
        if (link) link.click();
      }
    }

    refreshTimes() {
      this.list.querySelectorAll("time[datetime]").forEach((time) => {
        time.title = time.getAttribute("datetime");
        time.textContent = ago(time.getAttribute("datetime"));
      });
    }
  }

  /** Milliseconds from a Retry-After header (seconds or an HTTP date); null without one. */
  function retryAfter(response) {
    const value = (response.headers.get("Retry-After") || "").trim();
    const seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
    return Number.isFinite(seconds) ? Math.max(0, seconds) * 1000 : null;
  }

  function start() {
    document.querySelectorAll("[data-notifications]").forEach((root, index) => {
      if (root.dataset.notificationsReady) return; // the tag may include this script twice
      root.dataset.notificationsReady = "1";
      const feed = new Feed(root, index);
      feed.status("connecting");
      feed.connect();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
