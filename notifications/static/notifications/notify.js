/*
 * django-notifications-hq's notify.js, live: the same globals and callbacks
 * (register_notifier, fill_notification_badge, fill_notification_list; the
 * settings {% register_notify_callbacks %} writes), but instead of polling it
 * follows the notification stream (Server-Sent Events) and fetches hq's JSON
 * list whenever something changes. It polls every notify_refresh_period only
 * while the stream is unavailable.
 *
 * Load it before {% register_notify_callbacks %}, as with hq.
 */
var notify_badge_class;
var notify_menu_class;
var notify_api_url;
var notify_fetch_count;
var notify_unread_url;
var notify_mark_all_unread_url;
var notify_refresh_period = 15000;
// Set notify_mark_as_read to true to mark notifications as read when fetched.
var notify_mark_as_read = false;
var notify_stream_url;
var consecutive_misfires = 0;
var registered_functions = [];

var notify_stream = null;
var notify_poll_timer = null;
var notify_fetching = false;
var notify_fetch_again = false;

function fill_notification_badge(data) {
    var badges = document.getElementsByClassName(notify_badge_class);
    for (var i = 0; i < badges.length; i++) {
        badges[i].textContent = data.unread_count;
        badges[i].removeAttribute("title");
    }
}

function notify_describe(item) {
    var parts = [];
    ["actor", "verb", "target", "timestamp"].forEach(function (key) {
        if (typeof item[key] !== "undefined" && item[key] !== null && item[key] !== "") {
            parts.push(String(item[key]));
        }
    });
    return parts.join(" ");
}

function fill_notification_list(data) {
    var menus = document.getElementsByClassName(notify_menu_class);
    var items = data.unread_list || data.all_list || [];
    for (var i = 0; i < menus.length; i++) {
        var fragment = document.createDocumentFragment();
        items.forEach(function (item) {
            var li = document.createElement("li");
            li.textContent = notify_describe(item);  // text, never HTML
            li.setAttribute("data-notification-id", item.id);
            fragment.appendChild(li);
        });
        menus[i].replaceChildren(fragment);
    }
}

function register_notifier(func) {
    registered_functions.push(func);
}

function notify_lost() {
    var badges = document.getElementsByClassName(notify_badge_class);
    for (var i = 0; i < badges.length; i++) {
        badges[i].textContent = "!";
        badges[i].title = "Connection lost!";
    }
}

/* Fetch hq's JSON once and hand it to every registered callback. */
function fetch_api_data() {
    if (registered_functions.length === 0 || !notify_api_url) {
        return;
    }
    if (notify_fetching) {
        notify_fetch_again = true;
        return;
    }
    notify_fetching = true;
    var params = "?max=" + encodeURIComponent(notify_fetch_count);
    if (notify_mark_as_read) {
        params += "&mark_as_read=true";
    }
    fetch(notify_api_url + params, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
            if (!response.ok) {
                throw new Error("HTTP " + response.status);
            }
            return response.json();
        })
        .then(function (data) {
            consecutive_misfires = 0;
            for (var i = 0; i < registered_functions.length; i++) {
                registered_functions[i](data);
            }
        })
        .catch(function () {
            consecutive_misfires++;
            if (consecutive_misfires >= 10) {
                notify_stop_polling();
                notify_lost();
            }
        })
        .finally(function () {
            notify_fetching = false;
            if (notify_fetch_again) {
                notify_fetch_again = false;
                fetch_api_data();
            }
        });
}

function notify_poll() {
    fetch_api_data();
    notify_poll_timer = setTimeout(notify_poll, notify_refresh_period);
}

function notify_start_polling() {
    if (notify_poll_timer === null && consecutive_misfires < 10) {
        notify_poll_timer = setTimeout(notify_poll, notify_refresh_period);
    }
}

function notify_stop_polling() {
    if (notify_poll_timer !== null) {
        clearTimeout(notify_poll_timer);
        notify_poll_timer = null;
    }
}

function notify_follow_stream() {
    if (!window.EventSource || !notify_stream_url) {
        return false;
    }
    notify_stream = new EventSource(notify_stream_url);
    notify_stream.addEventListener("open", function () {
        notify_stop_polling();
        fetch_api_data();  // catch up with whatever changed while disconnected
    });
    ["notification", "read", "reset"].forEach(function (name) {
        notify_stream.addEventListener(name, fetch_api_data);
    });
    notify_stream.addEventListener("error", function () {
        // The browser reconnects by itself; poll meanwhile, or for good if it gave up.
        notify_start_polling();
    });
    return true;
}

function notify_start() {
    if (registered_functions.length === 0) {
        return;
    }
    fetch_api_data();
    if (!notify_follow_stream()) {
        notify_start_polling();
    }
}

if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", notify_start);
} else {
    setTimeout(notify_start, 0);
}
