// Filter forms that update a region with htmx (hx-sync="this:queue last"): a request whose
// query is the same as the last one this form sent is skipped, so pressing Filter after the
// typing pause already asked for the same thing sends nothing. A request from inside the
// region the form resets on (a pager link) forgets it: Filter then returns to the first page.
(function () {
  "use strict";

  function query(form) {
    return new URLSearchParams(new FormData(form)).toString();
  }

  document.addEventListener("htmx:confirm", function (event) {
    const form = event.detail.elt;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-skip-repeats")) return;
    if (form.dataset.lastQuery === query(form)) event.preventDefault();
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    const elt = event.detail.elt;
    if (elt instanceof HTMLFormElement && elt.hasAttribute("data-skip-repeats")) {
      elt.dataset.lastQuery = query(elt);
      return;
    }
    document.querySelectorAll("form[data-skip-repeats][data-resets-on]").forEach(function (form) {
      const region = document.querySelector(form.dataset.resetsOn);
      if (region && region.contains(elt)) delete form.dataset.lastQuery;
    });
  });
})();
