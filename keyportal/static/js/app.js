// keyportal console behaviour: toasts, copy buttons. Loaded from our own origin (CSP: no inline
// script), and everything here is an enhancement: every page works without it.
(function () {
  "use strict";

  function dismissLater(toast) {
    if (!toast.classList.contains("toast-error")) {
      setTimeout(function () { toast.remove(); }, 6000);
    }
  }

  function showToast(level, text) {
    var box = document.getElementById("toasts");
    var toast = document.createElement("div");
    toast.className = "toast toast-" + level;
    var span = document.createElement("span");
    span.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("data-dismiss", "");
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    toast.append(span, close);
    box.append(toast);
    dismissLater(toast);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("#toasts .toast").forEach(dismissLater);
  });

  // Messages from htmx responses arrive as an HX-Trigger event named "messages".
  document.addEventListener("messages", function (event) {
    var items = (event.detail && event.detail.value) || [];
    items.forEach(function (item) { showToast(item.level, item.text); });
  });

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) {
      dismiss.closest(".toast").remove();
      return;
    }
    var copy = event.target.closest("[data-copy-target]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy-target"));
      var text = source ? source.textContent.trim() : "";
      var done = function () {
        var label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = label; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand("copy");
        selection.removeAllRanges();
        done();
      }
    }
  });

  // ---- The key dialog. Forms and the one-time reveal are swapped into #key-dialog-body. ----
  var dialog = document.getElementById("key-dialog");
  var dialogBody = document.getElementById("key-dialog-body");
  var opener = null;
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";

  // Focus what the person needs first: a confirmation's Cancel (so Enter does not confirm by
  // accident), else the first field in error (scrolled into view, not the top), else the Name.
  function focusFirst(root) {
    var target = root.querySelector("[data-autofocus]") ||
      root.querySelector("[aria-invalid='true']") ||
      root.querySelector("input[name=name]") ||
      root.querySelector(FOCUSABLE);
    if (!target) { return; }
    var invalid = target.getAttribute("aria-invalid") === "true";
    if (invalid) {
      var details = target.closest("details");
      if (details) { details.open = true; }
    }
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: invalid ? "center" : "nearest" });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target === dialogBody && dialog && !dialog.open) {
      opener = event.detail.elt;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target !== dialogBody) {
      var invalid = event.detail.target.querySelector("[aria-invalid='true']");
      if (invalid) { focusFirst(event.detail.target); }
      return;
    }
    if (!dialog.open) { dialog.showModal(); }
    focusFirst(dialogBody);
  });

  // Tab and Shift-Tab go round inside the dialog while it is open.
  if (dialog) {
    dialog.addEventListener("keydown", function (event) {
      if (event.key !== "Tab") { return; }
      var items = Array.prototype.filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) {
        return el.offsetParent !== null || el === document.activeElement;
      });
      if (items.length === 0) { return; }
      var first = items[0];
      var last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    });
  }

  // After the keys table is refreshed under an opener it held, focus the newest key's link.
  var refocusTable = false;
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocusTable) { return; }
    var table = document.getElementById("key-table");
    var target = table && (table.querySelector("a.key-name") || table.querySelector("a, button"));
    if (target) {
      refocusTable = false;
      target.focus();
    }
  });

  // ---- The one-time reveal: closing without having copied asks first. ----
  var copied = false;

  function revealShown() { return dialogBody && dialogBody.querySelector("[data-secret]") !== null; }

  function askBeforeClosing() {
    var ask = dialogBody.querySelector("[data-secret] [data-copy-check]");
    ask.hidden = false;
    ask.querySelector("[data-copy-check-back]").focus();
  }

  function closeDialog() {
    if (revealShown() && !copied) {
      askBeforeClosing();
      return;
    }
    dialog.close();
  }

  if (dialog) {
    // Escape asks too.
    dialog.addEventListener("cancel", function (event) {
      if (revealShown() && !copied) {
        event.preventDefault();
        askBeforeClosing();
      }
    });
    dialog.addEventListener("close", function () {
      var revealed = revealShown();
      // The plaintext must not outlive the dialog: drop it from the page.
      dialogBody.replaceChildren();
      copied = false;
      if (opener && document.contains(opener)) { opener.focus(); }
      var table = document.getElementById("key-table");
      // An opener inside the keys table is replaced by the refresh below: focus follows it.
      refocusTable = revealed && table !== null && opener !== null && table.contains(opener);
      opener = null;
      if (!revealed) { return; }
      if (table) {
        htmx.trigger(document.body, "keys-changed");
      } else {
        window.location.reload();
      }
    });
  }

  document.addEventListener("click", function (event) {
    if (!dialog || !dialog.open) { return; }
    if (event.target.closest("[data-copy-check-back]")) {
      event.preventDefault();
      event.target.closest("[data-copy-check]").hidden = true;
      var copy = dialogBody.querySelector("[data-secret] [data-copy-target]");
      if (copy) { copy.focus(); }
    } else if (event.target.closest("[data-close-anyway]")) {
      event.preventDefault();
      copied = true;
      dialog.close();
    } else if (event.target.closest("[data-close-dialog]")) {
      event.preventDefault();
      closeDialog();
    } else if (event.target.closest("[data-secret] [data-copy-target]")) {
      copied = true;
    }
  });

  // A page kept in the back-forward cache must not bring a revealed key back.
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("[data-secret]").forEach(function (el) { el.remove(); });
    if (dialogBody) { dialogBody.replaceChildren(); }
  });

  // ---- A form is sent once: its buttons disable themselves after the first press. ----
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") { return; }
    if (form.hasAttribute("data-submitting")) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    form.setAttribute("data-submitting", "");
    // After this event, so that the button still sends its own name and value.
    setTimeout(function () {
      form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) {
        b.disabled = true;
        b.setAttribute("aria-busy", "true");
      });
    }, 0);
  }, true);

  function releaseForm(form) {
    form.removeAttribute("data-submitting");
    form.querySelectorAll("button[aria-busy]").forEach(function (b) {
      b.disabled = false;
      b.removeAttribute("aria-busy");
    });
  }

  // An htmx form whose answer left it in place (a failed request) can be sent again.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form");
    if (form && document.contains(form)) { releaseForm(form); }
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(releaseForm);
  });

  // A page that loads with errors (no htmx, or JavaScript arriving late) focuses the first.
  // A refusal of a whole form rather than of one field (loosening a key's protections) is
  // focused the same way, so that it is read out and in view.
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    if (main && main.querySelector("[aria-invalid='true']")) {
      focusFirst(main);
    } else if (main && main.querySelector("[data-focus-error]")) {
      var error = main.querySelector("[data-focus-error]");
      var details = error.closest("details");
      if (details) { details.open = true; }
      error.focus({ preventScroll: true });
      error.scrollIntoView({ block: "center" });
    }
  });

  // ---- Permission groups, presets and the custom expiry date. ----
  function groupBoxes(form, group) {
    return form.querySelectorAll("input[name=permissions][data-group='" + group + "']:not(:disabled)");
  }

  function syncToggle(form, group) {
    var toggle = form.querySelector("[data-group-toggle='" + group + "']");
    if (!toggle) { return; }
    var boxes = Array.from(groupBoxes(form, group));
    var on = boxes.filter(function (b) { return b.checked; }).length;
    toggle.checked = boxes.length > 0 && on === boxes.length;
    toggle.indeterminate = on > 0 && on < boxes.length;
    toggle.disabled = boxes.length === 0;
  }

  function syncCustomDate(form) {
    var select = form.querySelector("select[name=expiration]");
    var custom = form.querySelector("[data-custom-date]");
    if (select && custom) { custom.hidden = select.value !== "custom"; }
  }

  function initKeyForm(form) {
    form.querySelectorAll("[data-group-toggle]").forEach(function (t) {
      syncToggle(form, t.getAttribute("data-group-toggle"));
    });
    syncCustomDate(form);
  }

  function setPreset(form, name) {
    var fieldset = form.querySelector("[data-presets]");
    var presets = JSON.parse(fieldset.getAttribute("data-presets"));
    var wanted = presets[name];
    if (!wanted) { return; }
    form.querySelectorAll("input[name=permissions]:not(:disabled)").forEach(function (box) {
      box.checked = wanted.indexOf(box.value) !== -1;
    });
    initKeyForm(form);
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    var form = el.closest(".key-form");
    if (!form) { return; }
    if (el.hasAttribute("data-group-toggle")) {
      var group = el.getAttribute("data-group-toggle");
      groupBoxes(form, group).forEach(function (b) { b.checked = el.checked; });
      syncToggle(form, group);
      setCustomPreset(form);
    } else if (el.name === "permissions") {
      syncToggle(form, el.getAttribute("data-group"));
      setCustomPreset(form);
    } else if (el.name === "preset") {
      setPreset(form, el.value);
      var customize = form.querySelector("[data-customize]");
      if (customize && el.value === "custom") { customize.open = true; }
    } else if (el.name === "expiration") {
      syncCustomDate(form);
    } else if (el.name && el.name.indexOf("scope_") === 0) {
      // A narrower scope is a choice made by hand, which no preset would keep.
      setCustomPreset(form);
    }
  });

  function setCustomPreset(form) {
    var custom = form.querySelector("input[name=preset][value=custom]");
    if (custom) { custom.checked = true; }
  }

  // ---- Selecting keys in a keys table: the header box selects the page, a live count. ----
  function syncSelection(form) {
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=ids]"));
    var on = boxes.filter(function (b) { return b.checked; }).length;
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && on === boxes.length;
      all.indeterminate = on > 0 && on < boxes.length;
    }
    var count = form.querySelector("[data-selection-count]");
    if (count) {
      count.textContent = on === 0 ? "No key selected" : (on === 1 ? "1 key selected" : on + " keys selected");
    }
    var revoke = form.querySelector("[data-bulk-revoke]");
    if (revoke) { revoke.disabled = on === 0; }
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest("form[data-bulk]");
    if (!form) { return; }
    if (event.target.matches("[data-select-all]")) {
      form.querySelectorAll("input[name=ids]").forEach(function (b) { b.checked = event.target.checked; });
    }
    syncSelection(form);
  });

  if (window.htmx) {
    htmx.onLoad(function (root) {
      var forms = root.matches && root.matches(".key-form") ? [root] : root.querySelectorAll(".key-form");
      forms.forEach(initKeyForm);
      var tables = root.matches && root.matches("form[data-bulk]") ? [root] : root.querySelectorAll("form[data-bulk]");
      tables.forEach(syncSelection);
    });
  }
  document.documentElement.classList.add("js");
})();
