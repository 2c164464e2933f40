// keng console: small progressive enhancements; every page works without this file.
// - [data-count-for=ID]: live character count of a text field.
// - [data-spoken-for=ID][data-spoken-url=URL]: the spoken (normalised) form of a text, fetched as the text changes.
// - [data-live-url=URL][data-live-stream]: reload this element's HTML from URL when the event stream reports news.
// - form[data-confirm]: ask before submitting (e.g. cancelling a broadcast on air).
// - form[data-busy="text"]: while a slow request runs (e.g. the chain's verification), say so on its button.
"use strict";
(function () {
  function csrf() {
    var m = document.querySelector('input[name="csrf"]');
    return m ? m.value : "";
  }
  function debounce(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }
  document.querySelectorAll("[data-count-for]").forEach(function (out) {
    var field = document.getElementById(out.getAttribute("data-count-for"));
    if (!field) return;
    var max = field.getAttribute("maxlength");
    function update() {
      var n = Array.from(field.value).length;
      out.textContent = max ? n + " / " + max + " ký tự" : n + " ký tự";
    }
    field.addEventListener("input", update);
    update();
  });
  document.querySelectorAll("[data-spoken-for]").forEach(function (out) {
    var field = document.getElementById(out.getAttribute("data-spoken-for"));
    var url = out.getAttribute("data-spoken-url");
    if (!field || !url) return;
    var update = debounce(function () {
      fetch(url, {method: "POST", credentials: "same-origin",
                  headers: {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf()},
                  body: new URLSearchParams({text: field.value, csrf: csrf()})})
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (t) { out.textContent = t; })
        .catch(function () {});
    }, 400);
    field.addEventListener("input", update);
    update();
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (!button) return;
      button.textContent = form.getAttribute("data-busy");
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
    });
  });
  var live = document.querySelectorAll("[data-live-url]");
  if (live.length && window.EventSource) {
    var refresh = debounce(function () {
      live.forEach(function (el) {
        fetch(el.getAttribute("data-live-url"), {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) { if (html !== null) el.innerHTML = html; })
          .catch(function () {});
      });
    }, 250);
    var source = new EventSource("/console/stream");
    source.onmessage = refresh; // every message the person may read (state changes, acks, device transitions)
    source.addEventListener("revoked", function () { source.close(); });
    setInterval(refresh, 15000); // a safety net if an event kind is missed
  }
})();
