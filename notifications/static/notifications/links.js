/*
 * The one rule for links a notification carries, for the browser client
 * (notifications.js) and the service worker (sw.js); notifications/links.py is
 * the same rule on the server. A link is safe when it is relative or http(s),
 * holds no control character, no leading or trailing space, and does not start
 * with two slashes or backslashes (protocol-relative). Anything else
 * (javascript:, data:, vbscript:...) is refused.
 */
"use strict";

self.notificationsSafeUrl = function safeUrl(url) {
  if (typeof url !== "string") return "";
  if (/[\x00-\x1f\x7f]/.test(url) || url.startsWith(" ") || url.endsWith(" ")) return "";
  if (/^[/\\]{2}/.test(url)) return "";
  const scheme = /^([A-Za-z][A-Za-z0-9+.\-]*):/.exec(url);
  if (scheme && !["http", "https"].includes(scheme[1].toLowerCase())) return "";
  return url;
};
