/*
 * Service worker of the notifications app: shows Web Pushes and, on click,
 * marks the notification read and opens its URL. Register it from a page:
 *   navigator.serviceWorker.register("/static/notifications/sw.js")
 * The push payload is JSON: {id, title, body, icon, tag, url, read_url}.
 * A url that is not relative or http(s) opens "/" (links.js: the client's rule).
 */
"use strict";

importScripts("links.js");

self.addEventListener("push", (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (e) {
      data = { body: event.data.text() };
    }
  }
  const options = {
    body: data.body || "",
    data: { url: data.url || "/", read_url: data.read_url || "" },
  };
  if (data.icon) options.icon = data.icon;
  if (data.tag) {
    options.tag = data.tag; // a newer push of the same group replaces the older one
    options.renotify = true;
  }
  event.waitUntil(self.registration.showNotification(data.title || "Notification", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const target = new URL(self.notificationsSafeUrl(data.url) || "/", self.location.origin).href;
  event.waitUntil(
    (async () => {
      if (data.read_url) {
        try {
          await fetch(new URL(data.read_url, self.location.origin).href, { method: "POST", credentials: "omit" });
        } catch (e) {
          /* offline: it stays unread */
        }
      }
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (client.url === target && "focus" in client) return client.focus();
      }
      if (self.clients.openWindow) return self.clients.openWindow(target);
    })()
  );
});
