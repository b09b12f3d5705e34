/*
 * Live notifications for the bell rendered by {% notifications_bell %}.
 *
 * No globals of its own (links.js, loaded first, gives the link rule it shares
 * with the service worker), no build step: every [data-notifications] root is wired on load
 * and configured by its data-* attributes. The stream is read with fetch() and
 * parsed here (Server-Sent Events), so the client can send Last-Event-ID on
 * every connect, read the status code, honour retry: and Retry-After and back
 * off with jitter. All text goes into the page as text, never as HTML.
 *
 * One stream per browser, not per tab: the tabs of one user elect the holder
 * of the stream with the Web Locks API, and the holder relays what it reads to
 * the other tabs over a BroadcastChannel. When the holder closes or freezes,
 * the next tab in line takes the lock and resumes from the last cursor the
 * holder relayed. Without those two APIs each tab reads its own stream.
 */
(() => {
  "use strict";

  const RETRY_MS = 3000; // until the server's retry: field says otherwise
  const BACKOFF_MAX_MS = 30000;
  const JITTER_MS = 1000;
  const HEARTBEAT_S = 15; // until the bell's data-heartbeat says otherwise
  const SEEN_MAX = 1000; // notification ids remembered to drop duplicates
  const TICK_MS = 1000; // the holder says it is alive; tabs check the holder
  const HOLDER_SILENT_MS = 3000; // a holder unheard this long (frozen, hung) loses the lock
  const PRESENCE_MS = 2000; // a visible tab tells the others so this often...
  const PRESENCE_STALE_MS = 5000; // ...and counts as gone when unheard this long
  const TOASTS_MAX = 3;
  const TOAST_MS = 6000;
  const LIST_MAX = 50;
  const LEVELS = ["success", "info", "warning", "error"];
  /**
   * The words the client shows, in English. The bell's data-strings replaces
   * them with the page's language (Django's translations, rendered by the
   * template tag); a string missing there stays English. A plural is an
   * object with one form per Intl.PluralRules category ("one", "other"...);
   * "%(name)s" marks where a value goes. A new string: add it here and to
   * client_strings() in templatetags/notifications.py.
   */
  const STRINGS = {
    status: {
      connecting: "connecting",
      connected: "connected",
      reconnecting: "reconnecting",
      "signed-out": "signed out",
    },
    // The badge's count: what is new (unread and not seen yet), not all that is unread.
    bellLabel: { one: "Notifications, %(count)s new", other: "Notifications, %(count)s new" },
    unread: { one: "%(count)s new notification", other: "%(count)s new notifications" },
    grouped: { one: "%(count)s notification", other: "%(count)s notifications" },
    actorVerb: "%(actor)s %(verb)s",
    markRead: "Mark read",
    dismiss: "Dismiss",
    pushOn: "Notify me on this device",
    pushOff: "Stop notifying this device",
    archive: "Archive",
    restore: "Restore",
    snooze: "Snooze",
    snoozeUntil: "Snooze until",
    archived: "Archived",
    inbox: "Inbox",
    archiveRead: "Archive all read",
  };
  const SNOOZE_MINUTES = 60; // "later": until the bell's data-snooze-minutes says otherwise
  const SNOOZE_HOUR = 9; // "tomorrow" and "next week" (Monday) begin at 9:00, the browser's time
  let snoozeMenus = 0; // ids for the snooze choices of every bell on the page

  /**
   * Milliseconds of silence after which a stream counts as dead: two
   * heartbeats and two seconds of slack. The server sends a heartbeat after
   * ``heartbeat`` seconds without an event.
   */
  function watchdogMs(heartbeat) {
    return (2 * heartbeat + 2) * 1000;
  }

  // -- Server-Sent Events --------------------------------------------------

  /**
   * A parser for the text/event-stream format. Feed it decoded text in chunks
   * of any size; it calls on.event(type, data) per event, on.id(id) when an
   * event block with an id: field ends (so a cursor is never taken from half
   * an event), and on.retry(ms) per retry: field.
   */
  function sseParser(on) {
    let buffer = "";
    let skipLF = false; // the last chunk ended in CR, maybe half of a CRLF
    let type = "";
    let data = [];
    let id = null;

    function line(text) {
      if (text === "") {
        if (id !== null) on.id(id);
        if (data.length) on.event(type || "message", data.join("\n"));
        type = "";
        data = [];
        id = null;
        return;
      }
      if (text[0] === ":") return; // a comment: the heartbeat
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
      else if (field === "retry" && /^\d+$/.test(value)) on.retry(Number(value));
    }

    return (chunk) => {
      const text = skipLF && chunk[0] === "\n" ? chunk.slice(1) : chunk;
      skipLF = text.endsWith("\r");
      const lines = (buffer + text).split(/\r\n|\r|\n/);
      buffer = lines.pop();
      lines.forEach(line);
    };
  }

  /** Calls ``bark`` unless pet() again within ``ms``; stop() for good. */
  function watchdog(ms, bark) {
    let timer = setTimeout(bark, ms);
    return {
      pet() {
        clearTimeout(timer);
        timer = setTimeout(bark, ms);
      },
      stop() {
        clearTimeout(timer);
      },
    };
  }

  /** Milliseconds from a Retry-After header (seconds or an HTTP date); null without one. */
  function retryAfter(response) {
    const value = (response.headers.get("Retry-After") || "").trim();
    const seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
    return Number.isFinite(seconds) ? Math.max(0, seconds) * 1000 : null;
  }

  /**
   * One stream connection, kept open: connect with the last cursor, read, and
   * reconnect after the server's retry: (doubling while attempts fail, up to
   * 30 s, plus jitter), after Retry-After on 503, or when the link stays silent
   * longer than the watchdog allows. Stops for good on 401/403. The cursor is
   * opaque: whatever the last event's id: was, sent back as Last-Event-ID.
   *
   * ``on.event(type, data, cursor)`` per event, ``on.status(state)`` when the
   * connection's state changes, ``on.alive()`` per chunk read (heartbeats too).
   */
  class Stream {
    constructor(url, heartbeat, on) {
      this.url = url;
      this.idleMs = watchdogMs(heartbeat);
      this.on = on;
      this.retryMs = RETRY_MS;
      this.cursor = "";
      this.attempts = 0;
      this.run = 0; // start() and stop() move it on: a loop of an older run ends
      this.timer = null;
      this.abort = null;
    }

    start(cursor) {
      this.stop();
      this.cursor = cursor || "";
      this.attempts = 0;
      this.connect(this.run);
    }

    stop() {
      this.run += 1;
      clearTimeout(this.timer);
      if (this.abort) this.abort.abort();
      this.abort = null;
    }

    async connect(run) {
      const abort = new AbortController();
      this.abort = abort;
      // Also covers a server that accepts the connection and never answers.
      const dog = watchdog(this.idleMs, () => abort.abort());
      const headers = { Accept: "text/event-stream" };
      if (this.cursor) headers["Last-Event-ID"] = this.cursor;
      let response;
      try {
        response = await fetch(this.url, {
          headers, signal: abort.signal, cache: "no-store", credentials: "same-origin",
        });
      } catch (error) {
        dog.stop();
        return this.retry(run);
      }
      if (run !== this.run) return dog.stop();
      if (response.status === 401 || response.status === 403) {
        dog.stop();
        this.run += 1;
        return this.on.status("signed-out");
      }
      if (response.status === 503) {
        dog.stop();
        return this.retry(run, retryAfter(response));
      }
      if (!response.ok || !response.body) {
        dog.stop();
        return this.retry(run);
      }
      await this.read(response.body, dog, run);
      return this.retry(run);
    }

    /** Read the stream until it ends, fails, or stays silent too long. */
    async read(body, dog, run) {
      const parse = sseParser({
        event: (type, data) => run === this.run && this.dispatch(type, data),
        id: (id) => { this.cursor = id; },
        retry: (ms) => { this.retryMs = ms; },
      });
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      dog.pet();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          dog.pet();
          parse(value);
          if (run === this.run) this.on.alive();
        }
      } catch (error) {
        // The server went away, the link died or the watchdog barked: reconnect.
      } finally {
        dog.stop();
      }
    }

    dispatch(type, data) {
      if (type === "open") {
        this.attempts = 0;
        this.on.status("connected");
      }
      this.on.event(type, data, this.cursor);
    }

    /** Reconnect after ``delay`` ms, or the server's retry: backed off by failed attempts. */
    retry(run, delay) {
      if (run !== this.run) return;
      this.on.status("reconnecting");
      const wait = delay ?? Math.min(BACKOFF_MAX_MS, this.retryMs * 2 ** this.attempts);
      this.attempts += 1;
      this.timer = setTimeout(() => this.connect(run), wait + Math.random() * Math.min(JITTER_MS, wait || JITTER_MS));
    }
  }

  // -- one stream for the tabs of a browser ----------------------------------

  function sharingSupported() {
    return typeof BroadcastChannel === "function"
      && Boolean(navigator.locks) && typeof navigator.locks.request === "function";
  }

  /**
   * How one bell gets its events: as the holder of the browser's stream (it
   * reads the stream and relays each event, with the cursor after it, to the
   * other tabs), as a tab the holder relays to, or, where Web Locks or
   * BroadcastChannel are missing, through a stream of its own.
   *
   * The lock is per origin, stream URL and user. A tab waits in line for it
   * while it follows; the browser hands it to the next tab when the holder
   * closes; a tab that freezes gives it up first. A holder that stays silent
   * for seconds (frozen without notice, hung) has it taken from it.
   *
   * Each notification is toasted in one tab, chosen by the holder: of the
   * visible tabs, the one shown or used last (ties: the larger tab id); with
   * none visible, the holder's. Desktop notifications come from the holder.
   *
   * The bell's root says which it is in data-stream: holder, relayed or own.
   */
  class Connection {
    constructor(feed) {
      const config = feed.config;
      this.feed = feed;
      this.config = config;
      this.stream = new Stream(config.streamUrl, config.heartbeat, {
        event: (type, data, cursor) => this.fromStream(type, data, cursor),
        status: (state) => this.fromStreamStatus(state),
        alive: () => this.alive(),
      });
      this.cursor = config.cursor;
      this.tab = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
      this.role = "";
      this.election = null; // while this tab holds the lock or waits for it
      this.release = null; // resolving it gives the lock up
      this.since = Date.now(); // when this tab was last shown or used
      this.peers = new Map(); // the other tabs: id -> {visible, since, heard}
      this.holder = null; // the holder's tab id, once heard from
      this.heard = 0; // when the holder was last heard from
      this.announced = 0;
      this.pinged = 0;
      this.ticked = Date.now();
      // Tabs wait a little differently, so that one takes over, not all at once.
      this.patience = HOLDER_SILENT_MS + Math.random() * TICK_MS * 2;
    }

    start() {
      if (!sharingSupported()) {
        this.setRole("own");
        this.stream.start(this.cursor);
        return;
      }
      this.name = `notifications ${window.location.origin}${this.config.streamUrl} user ${this.config.user}`;
      this.channel = new BroadcastChannel(this.name);
      this.channel.addEventListener("message", (event) => this.onMessage(event.data));
      this.watchLifecycle();
      setInterval(() => this.tick(), TICK_MS);
      this.join();
    }

    setRole(role) {
      this.role = role;
      this.feed.root.dataset.stream = role;
    }

    post(message) {
      this.channel.postMessage({ ...message, tab: this.tab });
    }

    // -- the election --

    /**
     * Take the lock if it is free (and resume the stream from this tab's
     * cursor), or wait in line for it and follow the holder.
     */
    join() {
      const election = new AbortController();
      if (this.election) this.election.abort();
      this.election = election;
      this.setRole("relayed");
      this.holder = null;
      this.heard = Date.now();
      this.post({ kind: "hello", ...this.presence() });
      this.request({ ifAvailable: true }, election, (lock) => {
        if (lock) return this.lead();
        this.request({ signal: election.signal }, election, () => this.lead());
        // What the holder relayed before this tab listened (since the page
        // was rendered, or while it was frozen) is in the list the API gives.
        this.feed.reload();
        return undefined;
      });
    }

    request(options, election, callback) {
      navigator.locks.request(this.name, options, callback).catch(() => {
        // Taken from this tab while it was silent (frozen, hung): follow again.
        if (this.election === election && this.role === "holder") {
          this.stepDown();
          this.join();
        }
      });
    }

    /** Holding the lock: read the stream from the last cursor until stepDown(). */
    lead() {
      this.setRole("holder");
      this.post({ kind: "holder" });
      this.stream.start(this.cursor);
      this.ping();
      return new Promise((resolve) => { this.release = resolve; });
    }

    stepDown() {
      if (this.role !== "holder") return;
      this.stream.stop();
      if (this.release) this.release();
      this.release = null;
      this.setRole("relayed");
    }

    /** Leave the election (freezing, leaving the page, signed out). */
    withdraw() {
      this.stepDown();
      if (this.election) this.election.abort();
      this.election = null;
      this.setRole("");
      this.post({ kind: "bye" });
    }

    /** The holder has been silent for seconds (frozen, hung): take the lock from it. */
    steal() {
      const election = new AbortController();
      if (this.election) this.election.abort();
      this.election = election;
      this.heard = Date.now();
      this.request({ steal: true }, election, () => this.lead());
    }

    tick() {
      const now = Date.now();
      const late = now - this.ticked > 2 * TICK_MS; // this tab itself was asleep
      this.ticked = now;
      this.peers.forEach((peer, tab) => now - peer.heard > PRESENCE_STALE_MS && this.peers.delete(tab));
      if (!this.election) return;
      if (this.role === "holder" && now - this.pinged >= TICK_MS / 2) this.ping();
      if (document.visibilityState === "visible" && now - this.announced >= PRESENCE_MS) this.announce();
      if (this.role !== "relayed") return;
      if (late) this.heard = now; // give the holder's messages a chance first
      else if (now - this.heard > this.patience) this.steal();
    }

    watchLifecycle() {
      const shown = () => {
        this.since = Date.now();
        this.announce();
      };
      const used = () => {
        if (Date.now() - this.since > 1000) shown();
      };
      document.addEventListener("visibilitychange", () => (document.visibilityState === "visible" ? shown() : this.announce()));
      window.addEventListener("focus", used);
      document.addEventListener("pointerdown", used, true);
      document.addEventListener("keydown", used, true);
      // A frozen tab runs no code: it must not hold the stream, nor wait in line.
      document.addEventListener("freeze", () => this.withdraw());
      document.addEventListener("resume", () => this.rejoin());
      window.addEventListener("pagehide", () => this.withdraw());
      window.addEventListener("pageshow", (event) => event.persisted && this.rejoin());
    }

    rejoin() {
      if (!this.election && this.feed.state !== "signed-out") this.join();
    }

    // -- what the holder reads and relays --

    fromStream(type, data, cursor) {
      this.cursor = cursor;
      if (this.role === "own") {
        this.deliver(type, data, { toast: true, desktop: true });
        return;
      }
      // A read event may wake snoozed items: they toast as new notifications do.
      const toast = type === "notification" || type === "read" ? this.toastTab() : null;
      this.post({ kind: "event", type, data, cursor, toast });
      this.pinged = Date.now();
      this.deliver(type, data, { toast: toast === this.tab, desktop: true });
    }

    fromStreamStatus(state) {
      this.feed.status(state);
      if (this.role !== "holder") return;
      this.ping();
      if (state === "signed-out") this.withdraw();
    }

    alive() {
      if (this.role === "holder" && Date.now() - this.pinged >= TICK_MS / 2) this.ping();
    }

    /** The holder's state and cursor: sent on every change, and every second. */
    ping() {
      this.pinged = Date.now();
      this.post({ kind: "status", state: this.feed.state, cursor: this.cursor });
    }

    onMessage(message) {
      if (!message || typeof message !== "object" || message.tab === this.tab) return;
      const now = Date.now();
      const { kind } = message;
      if (kind === "hello" || kind === "presence") {
        this.peers.set(message.tab, { visible: message.visible === true, since: Number(message.since) || 0, heard: now });
        if (kind === "hello") {
          this.announce();
          if (this.role === "holder") this.ping();
        }
      } else if (kind === "bye") {
        this.peers.delete(message.tab);
      } else if (kind === "holder") {
        this.holder = message.tab;
        this.heard = now;
        this.announce();
      } else if ((kind === "status" || kind === "event") && this.role === "relayed") {
        // A holder the lock was taken from may speak once more before it knows.
        if (this.holder && message.tab !== this.holder && now - this.heard < HOLDER_SILENT_MS) return;
        this.holder = message.tab;
        this.heard = now;
        if (message.cursor) this.cursor = String(message.cursor);
        if (kind === "event") {
          this.deliver(message.type, message.data, { toast: message.toast === this.tab, desktop: false });
        } else {
          this.feed.status(message.state);
          if (message.state === "signed-out") this.withdraw();
        }
      }
    }

    deliver(type, data, shown) {
      let payload;
      try {
        payload = JSON.parse(data);
      } catch (error) {
        return;
      }
      if (type === "notification") this.feed.receive(payload, shown);
      else if (type === "read") this.feed.applyRead(payload, shown);
      else if (type === "reset") this.feed.reload();
    }

    // -- which tab shows a toast --

    presence() {
      return { visible: document.visibilityState === "visible", since: this.since };
    }

    announce() {
      if (!this.channel) return;
      this.announced = Date.now();
      this.post({ kind: "presence", ...this.presence() });
    }

    /** The tab that shows the next toast: the visible one shown or used last. */
    toastTab() {
      const now = Date.now();
      let best = null;
      const tabs = [[this.tab, { ...this.presence(), heard: now }], ...this.peers];
      tabs.forEach(([tab, peer]) => {
        if (!peer.visible || now - peer.heard > PRESENCE_STALE_MS) return;
        if (!best || peer.since > best.since || (peer.since === best.since && tab > best.tab)) {
          best = { tab, since: peer.since };
        }
      });
      return best ? best.tab : this.tab;
    }
  }

  // -- small DOM helpers -------------------------------------------------------

  /** Is notification ``n`` (JSON) unseen: unread, and not seen? The badge counts these. */
  function isUnseen(n) {
    return Boolean(n.unread) && n.seen !== true;
  }

  function itemUnseen(item) {
    return item.dataset.unread === "1" && item.dataset.seen !== "1";
  }

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

  /**
   * A link target that is safe to follow, else "": the rule of links.js, which
   * the service worker shares (without links.js on the page: no links at all).
   */
  const safeUrl = self.notificationsSafeUrl || (() => "");

  /**
   * The strings of one bell in ``language``: STRINGS, overridden by the JSON
   * object ``json`` (from data-strings). ``get(key, values)`` fills
   * "%(name)s"; ``plural(key, count, values)`` picks the form for ``count``.
   */
  class Texts {
    constructor(language, json) {
      let given = {};
      try {
        given = JSON.parse(json || "{}");
      } catch (error) {
        // Unreadable: English it is.
      }
      this.strings = { ...STRINGS, ...given, status: { ...STRINGS.status, ...(given.status || {}) } };
      this.language = language || undefined;
      this.rules = new Intl.PluralRules(this.language);
      this.relative = new Intl.RelativeTimeFormat(this.language, { numeric: "auto" });
    }

    get(key, values) {
      return Texts.fill(this.lookup(key), values);
    }

    plural(key, count, values) {
      const forms = this.lookup(key);
      const form = typeof forms === "object" ? forms[this.rules.select(count)] ?? forms.other : forms;
      return Texts.fill(form, { count, ...values });
    }

    lookup(key) {
      return key.split(".").reduce((node, part) => (node ? node[part] : undefined), this.strings) ?? key;
    }

    static fill(text, values) {
      return String(text).replace(/%\((\w+)\)s/g, (match, name) => (values && name in values ? String(values[name]) : match));
    }

    /** "In 1 hour", "Tomorrow", "Next week"...: ``count`` ``unit`` from now, as a label. */
    ahead(count, unit) {
      const text = this.relative.format(count, unit);
      return text.charAt(0).toLocaleUpperCase(this.language) + text.slice(1);
    }

    /** "now", "5 minutes ago", "yesterday"... for an ISO 8601 timestamp. */
    ago(iso) {
      const seconds = (Date.parse(iso) - Date.now()) / 1000;
      if (Number.isNaN(seconds)) return iso;
      if (seconds > -45) return this.relative.format(0, "second");
      const units = [["minute", 60], ["hour", 3600], ["day", 86400], ["week", 604800]];
      let [unit, size] = units[0];
      for (const [name, length] of units) if (-seconds >= length) [unit, size] = [name, length];
      return this.relative.format(Math.round(seconds / size), unit);
    }
  }

  // -- one bell ------------------------------------------------------------

  /** A set of notification ids that forgets the oldest beyond ``max``. */
  class SeenIds {
    constructor(max, ids) {
      this.max = max;
      this.ids = new Set();
      ids.forEach((id) => this.add(id));
    }

    has(id) {
      return this.ids.has(id);
    }

    add(id) {
      this.ids.delete(id);
      this.ids.add(id);
      if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value);
    }
  }

  /** The bell, its badge, list, status, toasts and desktop notifications. */
  class Feed {
    constructor(root, index) {
      const d = root.dataset;
      this.root = root;
      this.config = {
        streamUrl: d.streamUrl,
        listUrl: d.listUrl,
        readUrl: d.readUrl,
        readAllUrl: d.readAllUrl,
        seenUrl: d.seenUrl,
        archiveUrl: d.archiveUrl,
        unarchiveUrl: d.unarchiveUrl,
        snoozeUrl: d.snoozeUrl,
        archiveReadUrl: d.archiveReadUrl,
        snoozeMinutes: Number(d.snoozeMinutes) > 0 ? Number(d.snoozeMinutes) : SNOOZE_MINUTES,
        csrfToken: d.csrfToken,
        cursor: d.cursor || "",
        user: d.user || "",
        heartbeat: Number(d.heartbeat) > 0 ? Number(d.heartbeat) : HEARTBEAT_S,
        limit: Number(d.limit) || 10,
        badgeMax: Number(d.badgeMax) || 99,
        desktop: d.desktop === "1" && "Notification" in window,
      };
      this.texts = new Texts(d.language || document.documentElement.lang, d.strings);
      this.find = (name) => root.querySelector(`[data-notifications-${name}]`);
      this.view = "inbox"; // or "archived": what the list shows
      this.changes = 0; // the list's changes here and from the stream, so a reload can tell it is stale
      this.list = this.find("list");
      this.seen = new SeenIds(SEEN_MAX, this.items().map((item) => item.dataset.notificationId));
      this.count = Number(this.find("badge").dataset.count) || 0;
      this.wire(index);
    }

    items() {
      return Array.from(this.list.querySelectorAll("[data-notification-id]"));
    }

    status(state) {
      this.state = state;
      const node = this.find("status");
      if (!node || node.dataset.state === state) return;
      node.dataset.state = state;
      node.textContent = this.texts.get(`status.${state}`);
    }

    // -- what the stream tells --

    /**
     * A new notification: list and badge, once per id; a toast and a desktop
     * notification when ``shown`` says this tab shows them.
     */
    receive(n, shown) {
      const id = String(n.id);
      if (this.seen.has(id)) return;
      this.seen.add(id);
      if (this.view === "archived") { // new items go to the inbox, not shown here
        if (isUnseen(n)) this.setCount(this.count + 1);
        return;
      }
      const change = this.place(n);
      if (change === null) return; // older than its group's item: nothing new
      this.setCount(this.count + change);
      if (!n.unread || change === 0) return; // read meanwhile, or one more in an unread group
      if (shown.toast) this.toast(n);
      if (shown.desktop) this.desktop(n);
    }

    /**
     * Put ``n`` in the list and return how the unread count changes. One item
     * per group: a newer notification of a group replaces its item (it
     * carries the group's count and actors), an older one is dropped (null).
     */
    place(n) {
      const group = n.group ? String(n.group) : null;
      const shown = group && this.items().find((item) => item.dataset.group === group);
      if (shown && Number(shown.dataset.notificationId) > Number(n.id)) return null;
      const wasUnseen = Boolean(shown) && itemUnseen(shown);
      this.keepingFocus(() => {
        if (shown) shown.remove();
        this.renderListItem(n);
      });
      return (isUnseen(n) ? 1 : 0) - (wasUnseen ? 1 : 0);
    }

    /**
     * Run ``remake``, which makes items of the list again, and put back what
     * a keyboard user had there: the focus (on an item or one of its
     * controls) and open snooze choices, on the item made for the same
     * notification (or group). An item that is gone gives the focus to the bell.
     */
    keepingFocus(remake) {
      const key = (item) => (item.dataset.group ? `group:${item.dataset.group}` : `id:${item.dataset.notificationId}`);
      const active = document.activeElement;
      const focused = active && this.list.contains(active) ? active.closest("[data-notification-id]") : null;
      const control = focused && active !== focused
        ? active.getAttributeNames().find((name) => name.startsWith("data-notifications-"))
        : null;
      const controlValue = control ? active.getAttribute(control) : null;
      const open = this.items()
        .filter((item) => item.querySelector("[data-notifications-snooze-choices]:not([hidden])"))
        .map(key);
      remake();
      const find = (wanted) => this.items().find((item) => key(item) === wanted);
      open.forEach((wanted) => {
        const item = find(wanted);
        const button = item && item.querySelector("[data-notifications-snooze]");
        if (button && !item.querySelector("[data-notifications-snooze-choices]:not([hidden])")) this.toggleSnooze(item, button, false);
      });
      if (!focused || focused.isConnected) return;
      const again = find(key(focused));
      if (!again) {
        if (!this.find("panel").hidden) this.find("bell").focus();
        return;
      }
      const target = control ? again.querySelector(`[${control}="${CSS.escape(controlValue)}"]`) : again;
      (target || again).focus();
    }

    /**
     * A ``read`` event: read state or inbox state changed. ``shown`` says
     * whether this tab shows toasts and desktop notifications for it (items
     * back from a snooze get them, as new notifications do).
     */
    applyRead(change, shown = {}) {
      const { ids, unread, deleted, state } = change;
      const wanted = ids === "all" ? null : new Set((Array.isArray(ids) ? ids : []).map(String));
      const items = this.items().filter((item) => !wanted || wanted.has(item.dataset.notificationId));
      if (state) this.applyState(state, items, change, shown);
      else items.forEach((item) => (deleted ? item.remove() : this.markItem(item, unread)));
      // The badge counts what is unread and not seen (servers before inbox states: unread).
      const count = typeof change.unseen_count === "number" ? change.unseen_count : change.unread_count;
      if (typeof count === "number") this.setCount(count);
      this.updateEmpty();
    }

    /**
     * A change of inbox state (a ``read`` event with a ``state``): seen,
     * archived, unarchived, snoozed, or woken (a snooze came due: its items
     * come back, new, once).
     */
    applyState(state, items, change, shown) {
      const inbox = this.view === "inbox";
      this.changes += 1;
      if (state === "seen") items.forEach((item) => (item.dataset.seen = "1"));
      else if (state === "archived" || state === "snoozed") {
        if (inbox) items.forEach((item) => item.remove());
        else if (state === "archived") this.reload();
      } else if (state === "unarchived") {
        if (inbox) this.reload();
        else items.forEach((item) => item.remove());
      } else if (state === "woken" && inbox && Array.isArray(change.items)) {
        change.items.forEach((n) => this.wake(n, shown));
      }
    }

    /**
     * ``n`` is back from a snooze: in the list again, new, and toasted like a
     * new notification. Already in the list (a replay of the event, or the
     * page was rendered after the wake): placed again, no second toast.
     */
    wake(n, shown) {
      const id = String(n.id);
      const listed = this.items().some((item) => item.dataset.notificationId === id);
      this.seen.add(id);
      const change = this.place(n);
      if (listed || change === null || !isUnseen(n)) return;
      if (shown.toast) this.toast(n);
      if (shown.desktop) this.desktop(n);
    }

    /**
     * Load the list afresh from the API (the stream could not resume, or this
     * tab may have missed relayed events). What arrives while it loads stays.
     */
    async reload(tries = 3) {
      const asked = this.changes;
      const url = new URL(this.config.listUrl, window.location.href);
      url.searchParams.set("page_size", this.config.limit);
      if (this.view === "archived") url.searchParams.set("archived", "1");
      const before = new Set(this.items().map((item) => item.dataset.notificationId));
      let page;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) return;
        page = await response.json();
      } catch (error) {
        return; // the list stays as it was; the next reset or read event tries again
      }
      // An item archived or snoozed here, or a state event of the stream, while
      // the answer was on its way: the answer may predate it and would put the
      // item back. Ask again (a few times at most: then the answer stands).
      if (this.changes !== asked && tries > 1) return this.reload(tries - 1);
      const listed = new Set(page.results.map((n) => String(n.id)));
      // The answer replaces every item shown before it was asked for; items the
      // stream delivered while it was on its way stay. (The cursor is opaque.)
      let newer = 0;
      this.keepingFocus(() => {
        this.items().forEach((item) => {
          const id = item.dataset.notificationId;
          if (before.has(id) || listed.has(id)) item.remove();
        });
        newer = this.items().filter(itemUnseen).length;
        page.results.forEach((n) => { this.seen.add(String(n.id)); this.place(n); });
      });
      const counted = typeof page.unseen_count === "number" ? page.unseen_count : page.unread_count;
      this.setCount(counted + (this.view === "inbox" ? newer : 0));
      if (this.view === "inbox" && !this.find("panel").hidden) this.markSeen();
      this.updateEmpty();
    }

    // -- the list --

    /**
     * Show notification ``n`` in the list: the one place list items are made.
     * It replaces the item with the same id, or goes in newest first (by id,
     * so replays and out-of-order ids land right); the list stays bounded.
     */
    renderListItem(n) {
      const level = LEVELS.includes(n.level) ? n.level : "info";
      const href = safeUrl(n.url);
      // A kind's text is the whole sentence ("alice, bob and 3 others commented").
      const words = n.kind ? n.text : n.verb;
      const actor = n.kind || !n.actor ? null : el("span", { class: "ntf-actor" }, n.actor);
      const verb = href ? el("a", { class: "ntf-target", href }, words) : words;
      const count = n.count > 1 ? el("span", { class: "ntf-count", title: this.texts.plural("grouped", n.count) }, String(n.count)) : null;
      const item = el(
        "li",
        {
          class: `ntf-item ntf-${level}${n.unread ? " ntf-unread" : ""}`,
          "data-notification-id": n.id,
          "data-group": n.group || null,
          "data-unread": n.unread ? "1" : "0",
          "data-seen": isUnseen(n) ? "0" : "1",
          tabindex: "0",
        },
        el("span", { class: "ntf-dot", "aria-hidden": "true" }),
        el(
          "span",
          { class: "ntf-body" },
          el("span", { class: "ntf-verb" }, actor, actor ? " " : null, verb, count ? " " : null, count),
          n.description ? el("span", { class: "ntf-desc" }, n.description) : null,
          el("time", { class: "ntf-time", datetime: n.created, title: n.created }, this.texts.ago(n.created)),
        ),
        n.unread ? this.markButton() : null,
        ...this.stateButtons(),
      );
      const id = Number(n.id);
      const same = this.items().find((other) => other.dataset.notificationId === String(n.id));
      if (same) same.replaceWith(item);
      else this.list.insertBefore(item, this.items().find((other) => Number(other.dataset.notificationId) < id) || null);
      this.items().slice(Math.max(LIST_MAX, this.config.limit)).forEach((old) => old.remove());
      this.updateEmpty();
    }

    markButton() {
      return el("button", { type: "button", class: "ntf-link", "data-notifications-mark-read": "" }, this.texts.get("markRead"));
    }

    /** The item's inbox controls: archive and snooze, or restore under "Archived". */
    stateButtons() {
      const button = (name, text) => el("button", { type: "button", class: "ntf-link", [`data-notifications-${name}`]: "" }, text);
      if (this.view === "archived") return [button("restore", this.texts.get("restore"))];
      const buttons = [];
      if (this.config.archiveUrl) buttons.push(button("archive", this.texts.get("archive")));
      if (this.config.snoozeUrl) {
        const snooze = button("snooze", this.texts.get("snooze"));
        snooze.setAttribute("aria-expanded", "false");
        buttons.push(snooze);
      }
      return buttons;
    }

    /**
     * The snooze's choices, as [name, label, until()]: later (the bell's
     * snooze minutes), tomorrow and next week (Monday), those at 9:00 in the
     * browser's time; the labels in the page's language (Intl).
     */
    snoozeChoices() {
      const minutes = this.config.snoozeMinutes;
      const morning = (days) => {
        const at = new Date();
        at.setDate(at.getDate() + days);
        at.setHours(SNOOZE_HOUR, 0, 0, 0);
        return at;
      };
      const later = minutes % 60 === 0 ? this.texts.ahead(minutes / 60, "hour") : this.texts.ahead(minutes, "minute");
      return [
        ["later", later, () => new Date(Date.now() + minutes * 60000)],
        ["tomorrow", this.texts.ahead(1, "day"), () => morning(1)],
        ["next-week", this.texts.ahead(1, "week"), () => morning((8 - new Date().getDay()) % 7 || 7)],
      ];
    }

    /**
     * Show or hide the snooze's choices under ``button`` (a disclosure: the
     * button's aria-expanded and aria-controls); shown, the first has the
     * focus (unless ``focusFirst`` is false).
     */
    toggleSnooze(item, button, focusFirst = true) {
      let choices = item.querySelector("[data-notifications-snooze-choices]");
      if (choices && !choices.hidden) {
        this.closeSnooze(item, false);
        return;
      }
      if (!choices) {
        snoozeMenus += 1;
        choices = el(
          "div",
          { class: "ntf-snooze-choices", role: "group", id: `ntf-snooze-${snoozeMenus}`, "aria-label": this.texts.get("snoozeUntil"), "data-notifications-snooze-choices": "" },
          ...this.snoozeChoices().map(([name, label]) =>
            el("button", { type: "button", class: "ntf-link", "data-notifications-snooze-until": name }, label)),
        );
        item.append(choices);
        button.setAttribute("aria-controls", choices.id);
      }
      choices.hidden = false;
      button.setAttribute("aria-expanded", "true");
      if (focusFirst) choices.querySelector("button").focus();
    }

    /** Hide ``item``'s snooze choices; with ``refocus``, its Snooze button takes the focus. */
    closeSnooze(item, refocus) {
      const choices = item.querySelector("[data-notifications-snooze-choices]");
      const button = item.querySelector("[data-notifications-snooze]");
      if (choices) choices.hidden = true;
      if (button) {
        button.setAttribute("aria-expanded", "false");
        if (refocus) button.focus();
      }
    }

    markItem(item, unread) {
      item.dataset.unread = unread ? "1" : "0";
      if (unread) item.dataset.seen = "0"; // unread again: new, so unseen too
      item.classList.toggle("ntf-unread", unread);
      const button = item.querySelector("[data-notifications-mark-read]");
      if (!unread && button) {
        if (item.contains(document.activeElement)) item.focus();
        button.remove();
      }
      if (unread && !button) item.querySelector(".ntf-body").after(this.markButton());
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
      this.find("bell").setAttribute("aria-label", this.texts.plural("bellLabel", this.count));
      this.announce(this.texts.plural("unread", this.count));
    }

    /** Say ``text`` through the polite live region (screen readers read it when idle). */
    announce(text) {
      const region = this.find("announce");
      if (region && region.textContent !== text) region.textContent = text;
    }

    // -- marking read --

    post(url, body) {
      const headers = { "X-CSRFToken": this.config.csrfToken, Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      return fetch(url, {
        method: "POST",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        keepalive: true, // finishes even when a click on the item's link leaves the page
      }).then((response) => (response.ok ? response.json() : null), () => null);
    }

    async markRead(item) {
      if (item.dataset.unread !== "1") return;
      const url = this.config.readUrl.replace(/\/0\/(?=[^/]*\/?$)/, `/${item.dataset.notificationId}/`);
      const wasUnseen = itemUnseen(item);
      this.markItem(item, false);
      if (wasUnseen) this.setCount(this.count - 1); // the read event brings the exact count
      const result = await this.post(url);
      if (!result) {
        this.markItem(item, true); // not marked after all: show it as it is
        if (!wasUnseen) item.dataset.seen = "1";
        else this.setCount(this.count + 1);
      }
    }

    // -- inbox states --

    /**
     * Mark what the open list shows seen. The badge drops at once; the exact
     * count comes with the ``seen`` event, in the stream's order (an answer
     * to the POST could be older than a notification the stream brought since).
     */
    async markSeen() {
      if (!this.config.seenUrl || this.view !== "inbox") return;
      const unseen = this.items().filter(itemUnseen);
      if (!unseen.length) return;
      unseen.forEach((item) => (item.dataset.seen = "1"));
      this.setCount(this.count - unseen.length);
      const result = await this.post(this.config.seenUrl, { ids: unseen.map((item) => Number(item.dataset.notificationId)) });
      if (!result) {
        unseen.forEach((item) => (item.dataset.seen = "0"));
        this.setCount(this.count + unseen.length);
      }
    }

    /**
     * Archive, restore or snooze ``item`` (``action``; a snooze until
     * ``until``, a Date, or for the bell's snooze minutes); the item leaves
     * this list at once.
     */
    async changeState(item, action, until) {
      const id = item.dataset.notificationId;
      const template = { archive: this.config.archiveUrl, restore: this.config.unarchiveUrl, snooze: this.config.snoozeUrl }[action];
      if (!template) return;
      const body = action === "snooze" ? { until: (until || new Date(Date.now() + this.config.snoozeMinutes * 60000)).toISOString() } : undefined;
      if (item.contains(document.activeElement)) this.find("bell").focus();
      const wasUnseen = itemUnseen(item);
      this.changes += 1;
      item.remove();
      this.updateEmpty();
      if (wasUnseen && action !== "restore") this.setCount(this.count - 1); // the event brings the exact count
      const result = await this.post(template.replace(/\/0\/(?=[^/]*\/?$)/, `/${id}/`), body);
      if (!result) this.reload(); // not changed after all: show the list as it is
    }

    async archiveRead() {
      const result = await this.post(this.config.archiveReadUrl);
      if (result) this.applyRead({ ids: result.ids, state: "archived" }); // read items: the badge stays
    }

    /** Show the inbox or what was archived ("Archived"). */
    showView(view) {
      this.view = view;
      const toggle = this.find("archived");
      if (toggle) {
        toggle.textContent = view === "inbox" ? this.texts.get("archived") : this.texts.get("inbox");
        toggle.setAttribute("aria-pressed", view === "archived" ? "true" : "false");
      }
      this.root.dataset.view = view;
      this.reload();
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
      const close = el("button", { type: "button", class: "ntf-toast-close", "aria-label": this.texts.get("dismiss") }, "\u00d7");
      const toast = el(
        "div",
        { class: `ntf-toast ntf-${level}`, role: "status", "data-notification-id": n.id },
        el("span", { class: "ntf-toast-text" },
          el("strong", {}, this.title(n)),
          n.description ? el("span", {}, n.description) : null),
        close,
      );
      const remove = () => toast.remove();
      close.addEventListener("click", remove);
      setTimeout(remove, TOAST_MS);
      region.append(toast);
      while (region.children.length > TOASTS_MAX) region.firstElementChild.remove();
    }

    /** A toast's or desktop notification's title: actor and verb. */
    title(n) {
      return n.actor ? this.texts.get("actorVerb", { actor: n.actor, verb: n.verb }) : n.verb;
    }

    desktop(n) {
      if (!this.config.desktop || Notification.permission !== "granted") return;
      const title = this.title(n);
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
      this.markSeen();
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
      const archiveRead = this.find("archive-read");
      if (archiveRead) archiveRead.addEventListener("click", () => this.archiveRead());
      const archived = this.find("archived");
      if (archived) archived.addEventListener("click", () => this.showView(this.view === "inbox" ? "archived" : "inbox"));
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
      if (!item) return;
      const choice = event.target.closest("[data-notifications-snooze-until]");
      if (choice) {
        const chosen = this.snoozeChoices().find(([name]) => name === choice.dataset.notificationsSnoozeUntil);
        if (chosen) this.changeState(item, "snooze", chosen[2]());
        return;
      }
      if (event.target.closest("[data-notifications-snooze-choices]")) return; // between the choices
      const snooze = event.target.closest("[data-notifications-snooze]");
      if (snooze) {
        this.toggleSnooze(item, snooze);
        return;
      }
      const action = ["archive", "restore"].find((name) => event.target.closest(`[data-notifications-${name}]`));
      if (action) this.changeState(item, action);
      else this.markRead(item); // "Mark read", the item's link, or the item itself
    }

    onKey(event) {
      if (event.key === "Escape" && event.target.closest("[data-notifications-snooze-choices]")) {
        event.stopPropagation(); // the choices close; the list stays open
        this.closeSnooze(event.target.closest("[data-notification-id]"), true);
        return;
      }
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
        time.textContent = this.texts.ago(time.getAttribute("datetime"));
      });
    }
  }

  /**
   * "Notify me on this device": Web Push through the app's service worker.
   * The button shows when the page has a VAPID key and the browser can push.
   */
  function setupPush(root, texts) {
    const button = root.querySelector("[data-notifications-push]");
    const d = root.dataset;
    if (!button || !d.pushKey || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
    const post = (url, body) =>
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": d.csrfToken },
        body: JSON.stringify(body),
      });
    const key = Uint8Array.from(atob(d.pushKey.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const registration = () => navigator.serviceWorker.register(d.pushWorkerUrl);
    const show = (subscription) => {
      button.hidden = Notification.permission === "denied";
      button.dataset.subscribed = subscription ? "1" : "0";
      button.textContent = texts.get(subscription ? "pushOff" : "pushOn");
    };
    registration()
      .then((reg) => reg.pushManager.getSubscription())
      .then(show)
      .catch(() => {});
    button.addEventListener("click", async () => {
      try {
        const reg = await registration();
        const current = await reg.pushManager.getSubscription();
        if (current) {
          await post(d.pushUnsubscribeUrl, { endpoint: current.endpoint });
          await current.unsubscribe();
          show(null);
          return;
        }
        if ((await Notification.requestPermission()) !== "granted") return show(null);
        const subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
        const response = await post(d.pushSubscribeUrl, subscription.toJSON());
        show(response.ok ? subscription : null);
      } catch (error) {
        show(null);
      }
    });
  }

  function start() {
    document.querySelectorAll("[data-notifications]").forEach((root, index) => {
      if (root.dataset.notificationsReady) return; // the tag may include this script twice
      root.dataset.notificationsReady = "1";
      const feed = new Feed(root, index);
      feed.status("connecting");
      new Connection(feed).start();
      setupPush(root, feed.texts);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
