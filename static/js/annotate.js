// The annotator page, keyboard first: each key clicks the button (or ticks the box)
// that shows it in the item card; `g` opens and closes the guidelines.
// While an answer is on its way, keys are ignored, so a double press cannot send twice
// (the form also has hx-sync="this:drop", and the server stores one judgment anyway).
// The card swaps with settle:0ms, so the new form is wired to htmx before afterRequest
// fires; with htmx's default 20 ms settle delay, a key pressed in between would submit
// the new form the ordinary way (a whole page load).
(function () {
  "use strict";

  var inFlight = false;
  var TEXT_INPUTS = /^(text|search|email|number|password|url|tel|date|time|datetime-local|month|week)$/;

  function typingIn(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && TEXT_INPUTS.test((element.getAttribute("type") || "text").toLowerCase());
  }

  function card() {
    return document.getElementById("judge-card");
  }

  function insideCard(element) {
    var current = card();
    return Boolean(current && element && current.contains(element));
  }

  function showError(text) {
    var current = card();
    if (!current) return;
    var note = document.createElement("p");
    note.className = "notice notice-error";
    note.setAttribute("role", "alert");
    note.textContent = text;
    var form = current.querySelector("form");
    current.insertBefore(note, form);
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!insideCard(event.target)) return;
    inFlight = true;
    card().classList.add("is-busy");
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!inFlight) return;
    inFlight = false;
    var current = card();
    if (current) current.classList.remove("is-busy");
    if (!event.detail.successful && insideCard(event.target)) {
      showError("That answer did not reach the server. Please press the key again.");
    }
  });

  // Without htmx the form posts the ordinary way: the page is leaving, ignore more keys.
  document.addEventListener("submit", function (event) {
    if (!window.htmx && insideCard(event.target)) inFlight = true;
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.repeat) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typingIn(event.target)) return;
    var key = (event.key || "").toLowerCase();
    if (!/^[a-z0-9]$/.test(key)) return;

    if (key === "g") {
      var panel = document.getElementById("guidelines");
      if (panel) {
        event.preventDefault();
        panel.open = !panel.open;
      }
      return;
    }

    var current = card();
    if (!current) return;
    var target = current.querySelector('[data-key="' + key + '"]');
    if (!target || target.disabled) return;
    event.preventDefault();
    if (inFlight) return;
    if (target.type === "checkbox") {
      target.checked = !target.checked;
      target.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    target.click();
  });
})();
