// API Explorer: builds requests from the OpenAPI document and sends them from this page, as the
// key whose page this is (DESIGN rule 6): the server checks, on every request, that the signed-in
// person could rotate that key, then runs the call with its power. No secret is ever in the page;
// snippets use $KEYPORTAL_API_KEY instead.
(function () {
  "use strict";
  var root = document.getElementById("explorer");
  if (!root) { return; }
  var form = document.getElementById("explorer-form");
  var keyId = root.getAttribute("data-key-id");
  var select = document.getElementById("explorer-endpoint");
  var summary = document.getElementById("explorer-summary");
  var params = document.getElementById("explorer-params");
  var bodyField = document.getElementById("explorer-body-field");
  var body = document.getElementById("explorer-body");
  var operations = [];
  var spec = null;

  function resolve(schema) {
    while (schema && schema.$ref) {
      var path = schema.$ref.replace(/^#\//, "").split("/");
      schema = path.reduce(function (node, part) { return node[part]; }, spec);
    }
    return schema || {};
  }

  function example(schema) {
    schema = resolve(schema);
    if (schema.anyOf) { return example(schema.anyOf[0]); }
    if (schema.enum) { return schema.enum[0]; }
    switch (schema.type) {
      case "object":
        var out = {};
        Object.keys(schema.properties || {}).forEach(function (name) {
          if ((schema.required || []).indexOf(name) !== -1) { out[name] = example(schema.properties[name]); }
        });
        return out;
      case "array": return schema.items ? [example(schema.items)] : [];
      case "integer": case "number": return 1;
      case "boolean": return true;
      default: return schema.format === "date-time" ? new Date().toISOString() : "";
    }
  }

  function load() {
    fetch(root.getAttribute("data-openapi"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (doc) {
        spec = doc;
        select.replaceChildren();
        Object.keys(doc.paths).forEach(function (path) {
          Object.keys(doc.paths[path]).forEach(function (method) {
            var op = doc.paths[path][method];
            operations.push({ path: path, method: method.toUpperCase(), op: op });
            var option = document.createElement("option");
            option.value = String(operations.length - 1);
            option.textContent = method.toUpperCase() + " " + path + (op.summary ? " · " + op.summary : "");
            select.append(option);
          });
        });
        var whoami = operations.findIndex(function (o) { return o.path.endsWith("/whoami"); });
        select.value = String(whoami >= 0 ? whoami : 0);
        render();
      })
      .catch(function () { summary.textContent = "The OpenAPI document could not be loaded."; });
  }

  function current() { return operations[Number(select.value)]; }

  function jsonBodySchema(op) {
    var content = op.requestBody && op.requestBody.content;
    return content && content["application/json"] ? content["application/json"].schema : null;
  }

  function render() {
    var entry = current();
    if (!entry) { return; }
    summary.textContent = [entry.op.summary, entry.op.description].filter(Boolean).join(" · ");
    hideConfirm();
    params.replaceChildren();
    (entry.op.parameters || []).forEach(function (p) {
      var wrap = document.createElement("div");
      wrap.className = "field";
      var label = document.createElement("label");
      label.htmlFor = "param-" + p.name;
      label.textContent = p.name + " (" + p.in + (p.required ? ", required" : "") + ")";
      var input = document.createElement("input");
      input.type = "text";
      input.id = "param-" + p.name;
      input.dataset.name = p.name;
      input.dataset.in = p.in;
      if (p.required) { input.required = true; }
      if (p.name === "key_id") { input.value = keyId; }
      var error = document.createElement("p");
      error.className = "error";
      error.id = "param-" + p.name + "-error";
      error.hidden = true;
      wrap.append(label, input, error);
      params.append(wrap);
    });
    var content = entry.op.requestBody && entry.op.requestBody.content;
    var schema = jsonBodySchema(entry.op);
    bodyField.hidden = !schema;
    body.value = schema ? JSON.stringify(example(schema), null, 2) : "";
    if (content && content["multipart/form-data"]) {
      var note = document.createElement("p");
      note.className = "help";
      note.textContent = "This endpoint takes a file upload: use the curl snippet below with your file.";
      params.append(note);
    }
    snippets();
  }

  function buildUrl(entry) {
    var path = entry.path;
    var query = new URLSearchParams();
    params.querySelectorAll("input[data-name]").forEach(function (input) {
      if (input.dataset.in === "path") {
        path = path.replace("{" + input.dataset.name + "}", encodeURIComponent(input.value || "{" + input.dataset.name + "}"));
      } else if (input.value !== "") {
        query.append(input.dataset.name, input.value);
      }
    });
    var qs = query.toString();
    return window.location.origin + path + (qs ? "?" + qs : "");
  }

  function shellQuote(text) { return "'" + text.replace(/'/g, "'\\''") + "'"; }

  function snippets() {
    var entry = current();
    if (!entry) { return; }
    var url = buildUrl(entry);
    var data = bodyField.hidden ? "" : body.value.trim();
    var compact = data;
    try { compact = data ? JSON.stringify(JSON.parse(data)) : ""; } catch (e) { /* keep as typed */ }
    var curl = "curl -X " + entry.method + " " + shellQuote(url) + " \\\n  -H \"Authorization: Bearer $KEYPORTAL_API_KEY\"";
    var httpie = "http " + entry.method + " " + shellQuote(url) + " \\\n  \"Authorization:Bearer $KEYPORTAL_API_KEY\"";
    var python = "import os\n\nimport httpx\n\nresponse = httpx.request(\n    " + JSON.stringify(entry.method) + ",\n    " + JSON.stringify(url) + ",\n    headers={\"Authorization\": f\"Bearer {os.environ['KEYPORTAL_API_KEY']}\"},\n";
    if (compact) {
      curl += " \\\n  -H 'Content-Type: application/json' \\\n  -d " + shellQuote(compact);
      httpie += " \\\n  --raw " + shellQuote(compact);
      python += "    json=" + compact.replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None") + ",\n";
    }
    python += ")\nprint(response.status_code, response.json())\n";
    document.getElementById("snippet-curl").textContent = curl;
    document.getElementById("snippet-httpie").textContent = httpie;
    document.getElementById("snippet-python").textContent = python;
    document.getElementById("explorer-snippets").hidden = false;
  }

  function show(status, headers, text) {
    var badge = document.getElementById("explorer-status");
    badge.textContent = String(status);
    badge.className = "badge " + (status < 300 ? "badge-success" : status < 500 ? "badge-warning" : "badge-danger");
    document.getElementById("explorer-headers").textContent = headers;
    var pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    document.getElementById("explorer-response-body").textContent = pretty;
    document.getElementById("explorer-response").hidden = false;
  }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || ""; } catch (e) { return ""; }
  }

  // Every required path parameter is filled before anything is sent, with the error beside it.
  function missingParameter() {
    var missing = null;
    params.querySelectorAll("input[data-name]").forEach(function (input) {
      var error = document.getElementById(input.id + "-error");
      var empty = input.required && input.value.trim() === "";
      error.hidden = !empty;
      error.textContent = empty ? "Fill in " + input.dataset.name + " before sending." : "";
      if (empty) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
        missing = missing || input;
      } else {
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      }
    });
    return missing;
  }

  var confirmBox = document.getElementById("explorer-confirm");
  var confirmText = document.getElementById("explorer-confirm-text");
  var confirmed = false;
  params.addEventListener("input", hideConfirm);
  body.addEventListener("input", hideConfirm);

  // A confirmation holds for the one call it named, sent at once: anything else forgets it.
  function hideConfirm() {
    confirmed = false;
    if (confirmBox) { confirmBox.hidden = true; }
  }

  // What a call that changes something will do, in words, before it is sent.
  function consequence(entry) {
    var url = buildUrl(entry);
    var self = /\/whoami\/revoke$/.test(entry.path) ||
      new RegExp("/keys/" + keyId + "(/|$)").test(url);
    var body = bodyField.hidden ? "" : body_text();
    if (self && (entry.method === "DELETE" || /\/revoke$/.test(entry.path))) {
      return "This revokes the key you are exploring: every program using it is refused from the next request, for good.";
    }
    if (self && /\/rotate$/.test(entry.path)) {
      return "This rotates the key you are exploring: programs using its current secret must be given the new one, shown once in the response.";
    }
    if (self && entry.method === "PATCH" && /"disabled"/.test(body)) {
      return "This disables the key you are exploring: every program using it is refused until it is enabled again.";
    }
    var what = entry.op.summary ? entry.op.summary.replace(/\.$/, "") : entry.method + " " + entry.path;
    return "This sends " + entry.method + " " + entry.path + " as " + root.getAttribute("data-preview") +
      " and changes data for real: " + what.charAt(0).toLowerCase() + what.slice(1) + ".";
  }

  function body_text() { return body.value || ""; }

  if (confirmBox) {
    document.getElementById("explorer-confirm-cancel").addEventListener("click", function () {
      hideConfirm();
      document.getElementById("explorer-send").focus();
    });
    document.getElementById("explorer-confirm-send").addEventListener("click", function () {
      hideConfirm();
      confirmed = true;
      form.requestSubmit();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var entry = current();
    var missing = missingParameter();
    if (missing) {
      hideConfirm();
      missing.focus();
      return;
    }
    if (entry.method !== "GET" && entry.method !== "HEAD" && !confirmed) {
      confirmText.textContent = consequence(entry);
      confirmBox.hidden = false;
      document.getElementById("explorer-confirm-cancel").focus();
      return;
    }
    confirmed = false;
    var headers = { "X-Keyportal-Explore": keyId, "X-CSRFToken": csrfToken() };
    var init = { method: entry.method, headers: headers, credentials: "same-origin" };
    if (!bodyField.hidden && body.value.trim()) {
      init.headers["Content-Type"] = "application/json";
      init.body = body.value;
    }
    fetch(buildUrl(entry), init).then(function (response) {
      var lines = [];
      response.headers.forEach(function (value, name) { lines.push(name + ": " + value); });
      return response.text().then(function (text) { show(response.status, lines.join("\n"), text); });
    }).catch(function (error) { show(0, "", "The request failed: " + error); });
  });

  select.addEventListener("change", render);
  params.addEventListener("input", snippets);
  body.addEventListener("input", snippets);
  load();
})();
