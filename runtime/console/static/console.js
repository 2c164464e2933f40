// keng console: small progressive enhancements; every page works without this file.
// - [data-count-for=ID]: live character count of a text field.
// - [data-spoken-for=ID][data-spoken-url=URL]: the spoken (normalised) form of a text, fetched as the text changes.
// - [data-live-url=URL][data-live-stream]: reload this element's HTML from URL when the event stream reports news.
// - form[data-confirm]: ask before submitting (e.g. cancelling a broadcast on air).
// - svg[data-area-map]: the compose map; a ward (or group) clicked, or a ward focused and Space/Enter pressed, toggles
//   its checkbox (#area-CODE); what is ticked is highlighted ([data-parents] lists the codes that light a dot up).
// - button[data-preview-url][data-preview-target]: POSTs its form, shows the answer's audio ({url}) or images ({urls}).
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
    var drill = document.getElementById(out.getAttribute("data-spoken-drill") || "");
    if (!field || !url) return;
    var update = debounce(function () {
      var body = {text: field.value, csrf: csrf()};
      if (drill && drill.checked) body.drill = "on";
      fetch(url, {method: "POST", credentials: "same-origin",
                  headers: {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf()},
                  body: new URLSearchParams(body)})
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (t) { out.textContent = t; })
        .catch(function () {});
    }, 400);
    field.addEventListener("input", update);
    if (drill) drill.addEventListener("change", update);
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
  // -- compose: the map and the previews ------------------------------------------------------------------------
  var map = document.querySelector("svg[data-area-map]");
  function box(code) { return document.getElementById("area-" + code); }
  function paintMap() {
    if (!map) return;
    map.querySelectorAll("[data-parents]").forEach(function (el) {
      var codes = el.getAttribute("data-parents").split(" ").filter(Boolean);
      el.classList.toggle("on", codes.some(function (c) { var b = box(c); return b && b.checked; }));
      if (el.hasAttribute("aria-checked")) {
        var own = box(el.getAttribute("data-area"));
        el.setAttribute("aria-checked", own && own.checked ? "true" : "false");
      }
    });
  }
  function toggleArea(el) {
    var b = el && box(el.getAttribute("data-area"));
    if (!b) return;
    b.checked = !b.checked;
    b.dispatchEvent(new Event("change", {bubbles: true}));
  }
  if (map) {
    map.addEventListener("click", function (e) { toggleArea(e.target.closest("[data-area]")); });
    map.addEventListener("keydown", function (e) {
      if (e.key !== " " && e.key !== "Enter") return;
      var el = e.target.closest("[data-area]");
      if (el) { e.preventDefault(); toggleArea(el); }
    });
    document.addEventListener("change", function (e) { if (e.target.name === "areas") paintMap(); });
    paintMap();
  }
  document.querySelectorAll(".nojs").forEach(function (el) { el.hidden = true; });
  document.querySelectorAll("button[data-preview-url]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-preview-target"));
    var status = document.getElementById(button.getAttribute("data-preview-status"));
    if (!target || !button.form) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var body = new URLSearchParams(new FormData(button.form));
      button.disabled = true;
      if (status) status.textContent = "Đang tạo…";
      fetch(button.getAttribute("data-preview-url"), {method: "POST", credentials: "same-origin", body: body,
            headers: {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf()}})
        .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, j: j}; }); })
        .then(function (res) {
          if (!res.ok) { if (status) status.textContent = res.j.error || "Không tạo được bản xem trước."; return; }
          if (target.tagName === "AUDIO") {
            target.src = res.j.url;
            target.hidden = false;
            if (status) status.textContent = "Bản nghe thử dài " + res.j.seconds + " giây.";
            var played = target.play();
            if (played && played.catch) played.catch(function () {});
          } else {
            target.textContent = "";
            res.j.urls.forEach(function (u, i) {
              var img = new Image();
              img.src = u;
              img.alt = "Bảng tin điện tử, trang " + (i + 1) + "/" + res.j.pages;
              target.appendChild(img);
            });
            if (status) status.textContent = "Bảng tin: " + res.j.pages + " trang" +
              (res.j.shown < res.j.pages ? " (hiện " + res.j.shown + " trang đầu)." : ".");
          }
        })
        .catch(function () { if (status) status.textContent = "Không tạo được bản xem trước."; })
        .then(function () { button.disabled = false; });
    });
  });
})();
