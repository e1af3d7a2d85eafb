// Behaviour that the CSP keeps out of the templates (no inline script anywhere).
// Everything here is an enhancement: every link and form also works without JavaScript.
(function () {
  "use strict";

  var PANEL_ID = "twin-panel";
  var lastCardId = null;

  function panel() {
    return document.getElementById(PANEL_ID);
  }

  // Escape closes the asset panel, like its close button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var close = document.querySelector("#" + PANEL_ID + " [data-role=panel-close]");
    if (close) {
      event.preventDefault();
      // htmx processes swapped-in content only when it settles (~20 ms later); an Escape
      // in between would follow the plain link (a full page load that loses focus).
      if (window.htmx) window.htmx.process(close);
      close.click();
    }
  });

  // Remember which card opened the panel, so closing it can give focus back.
  document.addEventListener("click", function (event) {
    var card = event.target.closest && event.target.closest("[data-role=asset-card]");
    if (card) lastCardId = card.getAttribute("data-asset-id");
  });

  // Only the panel block is swapped, so the grid's "selected" marker is kept in step here.
  function syncSelectedCard() {
    var target = panel();
    if (!target) return null;
    var open = target.querySelector("[data-role=asset-panel]");
    var selectedId = open ? open.getAttribute("data-asset-id") : null;
    var cards = document.querySelectorAll("[data-role=asset-card]");
    for (var i = 0; i < cards.length; i++) {
      if (cards[i].getAttribute("data-asset-id") === selectedId) {
        cards[i].setAttribute("aria-current", "true");
      } else {
        cards[i].removeAttribute("aria-current");
      }
    }
    return open;
  }

  // A range or metric control swaps the metric view: focus stays on that control (its
  // counterpart in the new content, or the metric button outside it), never the page body.
  var usedControl = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!elt || !elt.getAttribute) return;
    if (elt.closest("[data-role=range-switch]")) {
      usedControl = '[data-role=range-switch] [data-range="' + elt.getAttribute("data-range") + '"]';
    } else if (elt.getAttribute("data-role") === "metric-button") {
      usedControl = '[data-role=metric-button][data-metric="' + elt.getAttribute("data-metric") + '"]';
    } else {
      usedControl = null;
    }
  });

  function restoreFocus(target) {
    if (!usedControl) return;
    var control = target.querySelector(usedControl) || document.querySelector("#" + PANEL_ID + " " + usedControl);
    usedControl = null;
    if (control && document.activeElement !== control) control.focus({ preventScroll: true });
  }

  // Same for the metric buttons when only the metric view was swapped.
  function syncSelectedMetric() {
    var view = document.querySelector("#metric-view [data-role=metric-view]");
    if (!view) return;
    var metric = view.getAttribute("data-metric");
    var buttons = document.querySelectorAll("#" + PANEL_ID + " [data-role=metric-button]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getAttribute("data-metric") === metric) {
        buttons[i].setAttribute("aria-current", "true");
      } else {
        buttons[i].removeAttribute("aria-current");
      }
    }
  }

  // The alarm banner's poll also says which assets are in alarm (a hidden list in the
  // banner): the overview's cards take their mark from it, so a card turns abnormal (or calm
  // again) without a reload. The words come translated from the grid's data-alarm-label-*.
  function syncCardAlarms() {
    var grid = document.getElementById("asset-grid");
    var list = document.querySelector("#alarm-banner [data-role=alarm-assets]");
    if (!grid || !list) return;
    var priorities = {};
    var entries = list.querySelectorAll("[data-asset-id]");
    for (var i = 0; i < entries.length; i++) {
      priorities[entries[i].getAttribute("data-asset-id")] = entries[i].getAttribute("data-priority");
    }
    var cards = grid.querySelectorAll("[data-role=asset-card]");
    for (var j = 0; j < cards.length; j++) {
      var card = cards[j];
      var priority = priorities[card.getAttribute("data-asset-id")] || null;
      var mark = card.querySelector("[data-role=card-alarm]");
      if (card.getAttribute("data-alarm-priority") === priority) continue;
      if (priority) {
        card.setAttribute("data-alarm-priority", priority);
      } else {
        card.removeAttribute("data-alarm-priority");
      }
      if (!mark) continue;
      if (priority) {
        mark.setAttribute("data-priority", priority);
        mark.textContent = grid.getAttribute("data-alarm-label-" + priority) || priority;
        mark.hidden = false;
      } else {
        mark.removeAttribute("data-priority");
        mark.textContent = "";
        mark.hidden = true;
      }
    }
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "alarm-banner") {
      syncCardAlarms();
      return;
    }
    if (target && target.id === "metric-view") {
      syncSelectedMetric();
      restoreFocus(target);
      return;
    }
    if (!target || target.id !== PANEL_ID) return;
    var open = syncSelectedCard();
    if (open) {
      // Keyboard users land on the panel they opened; screen readers hear its title.
      var heading = open.querySelector("h2[tabindex]");
      if (heading) heading.focus({ preventScroll: false });
      lastCardId = open.getAttribute("data-asset-id");
    } else if (lastCardId) {
      var card = document.querySelector('[data-role=asset-card][data-asset-id="' + lastCardId + '"]');
      if (card) card.focus();
    }
  });

  // Live status of a metric view's SSE stream: live, stale (no reading for three intervals)
  // or disconnected (htmx-ext-sse reconnects by itself). Words come translated from the page.
  function liveStatusOf(event) {
    var live = event.target && event.target.closest && event.target.closest("[sse-connect]");
    return live ? { live: live, status: live.querySelector("[data-role=live-status]") } : null;
  }

  function setLiveState(found, state) {
    if (!found || !found.status) return;
    if (found.status.getAttribute("data-state") === state) return;
    found.status.setAttribute("data-state", state);
    var label = found.status.getAttribute("data-label-" + state);
    if (label) found.status.textContent = label;
  }

  function markFresh(event) {
    var found = liveStatusOf(event);
    if (!found) return;
    found.live.setAttribute("data-last-message", String(Date.now()));
    setLiveState(found, "live");
  }

  document.addEventListener("htmx:sseOpen", markFresh);
  document.addEventListener("htmx:sseMessage", markFresh);
  document.addEventListener("htmx:sseError", function (event) {
    setLiveState(liveStatusOf(event), "disconnected");
  });
  document.addEventListener("htmx:sseClose", function (event) {
    setLiveState(liveStatusOf(event), "disconnected");
  });

  window.setInterval(function () {
    var streams = document.querySelectorAll("[sse-connect][data-last-message]");
    for (var i = 0; i < streams.length; i++) {
      var status = streams[i].querySelector("[data-role=live-status]");
      var interval = parseInt(streams[i].getAttribute("data-interval-ms"), 10) || 2000;
      var age = Date.now() - parseInt(streams[i].getAttribute("data-last-message"), 10);
      if (status && status.getAttribute("data-state") === "live" && age > 3 * interval + 1000) {
        setLiveState({ live: streams[i], status: status }, "stale");
      }
    }
  }, 1000);

  // A request that never reached the server (network down, server restarting):
  // say so in words instead of failing silently; clear it on the next answer.
  function connectionStatus(show) {
    var status = document.getElementById("connection-status");
    if (!status) return;
    if (show) {
      status.textContent = status.getAttribute("data-offline-message") || "";
      status.hidden = false;
    } else if (!status.hidden) {
      status.hidden = true;
      status.textContent = "";
    }
  }
  document.addEventListener("htmx:sendError", function () { connectionStatus(true); });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.xhr && event.detail.xhr.status > 0) connectionStatus(false);
  });
})();
