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

  // Keep focus sensible after htmx swaps a region: on the first invalid field, if any.
  document.addEventListener("htmx:afterSwap", function (event) {
    var invalid = event.detail.target.querySelector("[aria-invalid='true']");
    if (invalid) { invalid.focus(); }
  });

  // ---- The key dialog. Forms and the one-time reveal are swapped into #key-dialog-body. ----
  var dialog = document.getElementById("key-dialog");
  var dialogBody = document.getElementById("key-dialog-body");

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target !== dialogBody) { return; }
    if (!dialog.open) { dialog.showModal(); }
    // A destructive confirmation focuses its safe choice, so Enter does not confirm by accident.
    var first = dialogBody.querySelector("[data-autofocus], [aria-invalid='true'], input:not([type=hidden]), button");
    if (first) { first.focus(); }
  });

  if (dialog) {
    dialog.addEventListener("close", function () {
      var revealed = dialogBody.querySelector("[data-secret]") !== null;
      // The plaintext must not outlive the dialog: drop it from the page.
      dialogBody.replaceChildren();
      if (!revealed) { return; }
      if (document.getElementById("key-table")) {
        htmx.trigger(document.body, "keys-changed");
      } else {
        window.location.reload();
      }
    });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-dialog]") && dialog && dialog.open) {
      event.preventDefault();
      dialog.close();
    }
  });

  // A page kept in the back-forward cache must not bring a revealed key back.
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("[data-secret]").forEach(function (el) { el.remove(); });
    if (dialogBody) { dialogBody.replaceChildren(); }
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
    } else if (el.name === "expiration") {
      syncCustomDate(form);
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
