// taskflow monitor: live updates over Server-Sent Events and the admin action buttons.
// The server renders every fragment; this script only swaps them in.
(function () {
  "use strict";
  var body = document.body;
  var base = body.dataset.base || "";
  var live = document.getElementById("live");
  var flash = document.getElementById("flash");

  function setLive(state, text) {
    if (!live) return;
    live.dataset.state = state;
    live.textContent = text;
  }

  // refresh fetches the current page once more and replaces the elements with the given ids.
  // One refresh runs at a time; a request made meanwhile runs after it.
  var running = false, queued = null;
  function refresh(ids) {
    if (typeof ids === "string") ids = [ids];
    if (running) { queued = (queued || []).concat(ids); return; }
    running = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (resp) { return resp.ok ? resp.text() : Promise.reject(resp.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var fresh = doc.getElementById(id);
          var old = document.getElementById(id);
          if (fresh && old) old.replaceWith(fresh);
        });
      })
      .catch(function () {})
      .then(function () {
        running = false;
        if (queued) { var next = queued; queued = null; refresh(next); }
      });
  }

  function showFlash(text, isError) {
    if (!flash) return;
    flash.textContent = text;
    flash.className = isError ? "error" : "";
    flash.hidden = false;
    clearTimeout(showFlash.timer);
    showFlash.timer = setTimeout(function () { flash.hidden = true; }, 6000);
  }

  // Live updates.
  if (window.EventSource) {
    var es = new EventSource(base + "/api/events");
    es.onopen = function () { setLive("open", "live"); };
    es.onerror = function () { setLive("error", "reconnecting"); };
    ["workers", "queues", "stats"].forEach(function (name) {
      es.addEventListener(name, function (e) {
        var el = document.getElementById(name);
        if (el) el.innerHTML = e.data;
        if (name === "stats") {
          // Pages whose content can change with any task refresh at the snapshot pace.
          var table = document.getElementById("task-table");
          if (table && table.dataset.live === "true") refresh("task-table");
          var detail = document.getElementById("task-detail");
          if (detail && detail.dataset.terminal !== "true") refresh("task-detail");
        }
      });
    });
    es.addEventListener("task", function (e) {
      var ev;
      try { ev = JSON.parse(e.data); } catch (err) { return; }
      var detail = document.getElementById("task-detail");
      if (detail && detail.dataset.taskId === ev.task_id) refresh("task-detail");
    });
  } else {
    setLive("error", "no live updates in this browser");
  }

  // Admin actions: buttons with data-action post JSON to the API.
  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button) return;
    e.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    fetch(button.dataset.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: button.dataset.body || "{}"
    })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          if (!resp.ok) throw new Error(data.error || ("HTTP " + resp.status));
          return data;
        });
      })
      .then(function (data) {
        showFlash(describe(data), false);
        var ids = ["task-detail", "task-table", "queues"].filter(function (id) { return document.getElementById(id); });
        document.querySelectorAll("section.dead-letters").forEach(function (section) { ids.push(section.id); });
        refresh(ids);
      })
      .catch(function (err) { showFlash(err.message, true); })
      .then(function () { button.disabled = false; });
  });

  function describe(data) {
    if (data.task) return data.action + ": task " + data.task.id + " is " + data.task.state;
    if (data.counts) {
      return Object.keys(data.counts).map(function (k) { return data.counts[k] + " " + k.replace("_", " "); }).join(", ") || "nothing to requeue";
    }
    if (data.action === "purge") return "purged " + data.purged + " messages from " + data.queue;
    if (data.action) return data.action + ": " + data.queue;
    return "done";
  }
})();
