/* appshelf in-browser verification: Ed25519 signature of the manifest over its
   RFC 8785 (JCS) bytes, then SHA-256 and size of the artifact, with WebCrypto only. */
(function () {
  "use strict";

  /* RFC 8785 for JSON values that JSON.parse produced: sorted keys (UTF-16 code
     units, which is what Array.prototype.sort compares), ECMAScript number and
     string serialisation, no whitespace. */
  function canonicalize(value) {
    if (value === null || typeof value === "boolean") return JSON.stringify(value);
    if (typeof value === "number") {
      if (!isFinite(value)) throw new TypeError("JCS: number is not finite");
      return JSON.stringify(value);  /* ECMAScript Number-to-String, as RFC 8785 says */
    }
    if (typeof value === "string") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(canonicalize).join(",") + "]";
    if (typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (key) {
        return JSON.stringify(key) + ":" + canonicalize(value[key]);
      }).join(",") + "}";
    }
    throw new TypeError("JCS: unsupported value of type " + typeof value);
  }

  function hexToBytes(hex) {
    if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) throw new Error("not lowercase hex");
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  function toHex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  async function sha256Hex(data) {
    return toHex(await crypto.subtle.digest("SHA-256", data));
  }

  async function fetchJson(url) {
    var response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status + " for " + url);
    return response.json();
  }

  /* Check one envelope against keys.json (or a publisher's keys: `what` names the
     document and `listed` where the keys come from). Returns {state, text}. Every
     signature by a listed key must be valid (docs/spec.md section 3): one bad one fails
     the envelope. */
  async function checkSignature(envelope, keys, what, listed) {
    what = what || "the manifest";
    listed = listed || "keys.json";
    var passed = null;
    var message = new TextEncoder().encode(canonicalize(envelope.signed));
    var byId = {};
    (keys.keys || []).forEach(function (k) { byId[k.keyid] = k; });
    var signatures = Array.isArray(envelope.signatures) ? envelope.signatures : [];
    for (var i = 0; i < signatures.length; i++) {
      var sig = signatures[i];
      var key = byId[sig.keyid];
      if (!key) continue;
      var raw = hexToBytes(key.public);
      if (raw.length !== 32 || (await sha256Hex(raw)) !== key.keyid) {
        return { state: "fail", text: listed + " lists key " + key.keyid.slice(0, 16) + "… with a public key that does not hash to its id." };
      }
      var cryptoKey;
      try {
        cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
      } catch (err) {
        return { state: "skip", unsupported: true, text: "This browser does not support Ed25519 in WebCrypto, so the signature was NOT checked. Use a current browser, or verify with the commands below." };
      }
      var ok = await crypto.subtle.verify({ name: "Ed25519" }, cryptoKey, hexToBytes(sig.sig), message);
      if (!ok) {
        return { state: "fail", text: "The Ed25519 signature by key " + key.keyid.slice(0, 16) + "… does NOT match " + what + ": it was altered after signing." };
      }
      var label = key.status + (key.development ? ", the public DEVELOPMENT key: anyone can make such signatures" : "");
      passed = passed || { state: "pass", keyid: key.keyid, development: Boolean(key.development), text: "Ed25519 signature is valid, by key " + key.keyid + " (" + label + ")." };
    }
    return passed || { state: "fail", text: what.charAt(0).toUpperCase() + what.slice(1) + " is not signed by any key listed in " + listed + "." };
  }

  /* The second signature (docs/spec.md section 10): the publisher's statement.json, as
     pinned by the signed manifest, signed by a non-revoked key that publishers.json
     lists for the publisher the manifest names, and saying what the manifest says. */
  async function checkPublisher(section, signed, add) {
    var named = signed.publisher;
    if (!named) {
      add("info", "No publisher signature: only the registry signed this version.");
      return;
    }
    var here = location.href;
    var response, bytes, publishers;
    try {
      response = await fetch(new URL(section.dataset.statement || "statement.json", here), { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status + " for statement.json");
      bytes = await response.arrayBuffer();
      publishers = await fetchJson(new URL(section.dataset.publishers, here));
    } catch (err) {
      add("fail", "Could not read the publisher's statement or publishers.json: " + err.message);
      return;
    }
    var pin = named.statement || {};
    if (bytes.byteLength !== pin.length || (await sha256Hex(bytes)) !== pin.sha256) {
      add("fail", "statement.json is NOT the statement the signed manifest pins: it was replaced.");
      return;
    }
    var statement = JSON.parse(new TextDecoder().decode(bytes));
    var body = statement && statement.signed;
    if (!body || body.type !== "appshelf.release-statement" || body.publisher !== named.id) {
      add("fail", "statement.json is not a release statement by " + named.id + ".");
      return;
    }
    var publisher = (publishers.publishers || []).filter(function (p) { return p.id === named.id; })[0];
    if (!publisher) {
      add("fail", "publishers.json does not list the publisher " + named.id + ".");
      return;
    }
    var usable = (publisher.keys || []).filter(function (k) { return k.status !== "revoked" && k.keyid === named.keyid; });
    var result = await checkSignature(statement, { keys: usable }, "the publisher's statement", "publishers.json for " + named.id + " (not revoked)");
    if (result.state === "pass") {
      result.text = "Publisher signature is valid: " + publisher.name + " (" + named.id + "), key " + named.keyid + ".";
    }
    add(result.state, result.text);
    if (result.state !== "pass") return;
    var art = signed.artifact || {}, sa = body.artifact || {};
    var same = body.registry === signed.registry && body.app === signed.app && body.version === signed.version &&
      sa.sha256 === art.sha256 && sa.size === art.size && sa.filename === art.filename &&
      body.published === signed.published && canonicalize(body.dependencies || {}) === canonicalize(signed.dependencies || {}) &&
      canonicalize(body.provides || []) === canonicalize(signed.provides || []) &&
      canonicalize(body.requires || []) === canonicalize(signed.requires || []);
    if (same) {
      add("pass", "The publisher's statement and the registry's manifest agree (app, version, artifact SHA-256 and size, dependencies, published).");
    } else {
      add("fail", "The publisher's statement and the registry's manifest DISAGREE: do not trust this version.");
    }
  }

  async function run(section) {
    var checks = [];
    var add = function (state, text) { checks.push({ state: state, text: text }); };
    var here = location.href;
    var manifestUrl = new URL(section.dataset.manifest, here);
    var keysUrl = new URL(section.dataset.keys, here);
    var artifactUrl = new URL(section.dataset.artifact, here);
    var envelope, keys;
    try {
      envelope = await fetchJson(manifestUrl);
      keys = await fetchJson(keysUrl);
    } catch (err) {
      add("fail", "Could not read the manifest or keys.json: " + err.message);
      return checks;
    }
    var signed = envelope && envelope.signed;
    if (!signed || typeof signed !== "object" || signed.type !== "appshelf.manifest") {
      add("fail", "manifest.json is not a signed appshelf manifest.");
      return checks;
    }
    if (signed.app === section.dataset.app && signed.version === section.dataset.version) {
      add("pass", "The manifest is for " + signed.app + " " + signed.version + ", the version on this page.");
    } else {
      add("fail", "The manifest is for " + signed.app + " " + signed.version + ", not for this page's version.");
    }
    if (signed.registry !== section.dataset.registry) {
      add("fail", "The manifest belongs to registry " + signed.registry + ", not " + section.dataset.registry + ".");
    }
    var signature;
    try {
      signature = await checkSignature(envelope, keys);
    } catch (err) {
      signature = { state: "fail", text: "Could not check the signature: " + err.message };
    }
    add(signature.state, signature.text);
    if (signature.development) {
      add("info", "This registry is signed with the development key: the signature proves nothing about who published it.");
    }
    await checkPublisher(section, signed, add);
    var artifact = signed.artifact || {};
    var response;
    var crossOrigin = artifactUrl.origin !== location.origin;
    try {
      response = await fetch(artifactUrl, { cache: "no-store" });
    } catch (err) {
      if (crossOrigin) {
        add("skip", "Could not download the artifact from " + artifactUrl.origin + ": that host does not allow reads from this page (CORS) or is unreachable. Its SHA-256 and size were NOT checked here; the signature above still pins them (" + artifact.sha256 + ", " + artifact.size + " bytes), so check the download with the commands below.");
      } else {
        add("fail", "Could not download the artifact: " + err.message);
      }
      return checks;
    }
    if (!response.ok) {
      add("fail", "Downloading the artifact failed: HTTP " + response.status + " from " + artifactUrl.href + ".");
      return checks;
    }
    var bytes = await response.arrayBuffer();
    if (bytes.byteLength === artifact.size) {
      add("pass", "Size matches the signed manifest: " + bytes.byteLength + " bytes.");
    } else {
      add("fail", "Size is " + bytes.byteLength + " bytes; the signed manifest says " + artifact.size + ".");
    }
    var digest = await sha256Hex(bytes);
    if (digest === artifact.sha256) {
      add("pass", "SHA-256 matches the signed manifest: " + digest + ".");
    } else {
      add("fail", "SHA-256 is " + digest + "; the signed manifest says " + artifact.sha256 + ". The file was altered or corrupted: do not use it.");
    }
    if (artifact.url && artifact.url !== artifactUrl.href) {
      add("info", "Checked the file this page links to (" + artifactUrl.href + "); the manifest names " + artifact.url + ".");
    }
    return checks;
  }

  function verdict(checks) {
    if (checks.some(function (c) { return c.state === "fail"; })) return "fail";
    if (checks.some(function (c) { return c.state === "skip"; })) return "skip";
    return "pass";
  }

  var TITLES = {
    pass: ["ok", "Verified: the signatures and the artifact's SHA-256 and size all check out."],
    fail: ["bad", "Verification FAILED: do not trust this download."],
    skip: ["warn", "Incomplete: some checks could not run here (see below). Nothing failed."]
  };
  var MARKS = { pass: "✓", fail: "✗", skip: "!", info: "i" };

  function show(output, checks) {
    var result = verdict(checks);
    output.textContent = "";
    output.dataset.result = result;
    var summary = document.createElement("p");
    summary.className = "notice " + TITLES[result][0];
    summary.classList.add("verify-verdict");
    var strong = document.createElement("strong");
    strong.textContent = TITLES[result][1];
    summary.appendChild(strong);
    var list = document.createElement("ol");
    list.className = "checks";
    checks.forEach(function (check) {
      var li = document.createElement("li");
      li.className = "check-" + check.state;  /* prefixed: never a page-wide class */
      var mark = document.createElement("span");
      mark.className = "mark";
      mark.setAttribute("aria-label", check.state);
      mark.textContent = MARKS[check.state];
      var text = document.createElement("span");
      text.textContent = check.text;
      li.appendChild(mark);
      li.appendChild(text);
      list.appendChild(li);
    });
    output.appendChild(summary);
    output.appendChild(list);
  }

  /* Every version section of an app page has its own `.verify` block (data-manifest,
     data-keys, data-artifact... relative to the page), button and output. */
  function attach(section) {
    var button = section.querySelector(".verify-button");
    var output = section.querySelector(".verify-output");
    if (!button || !output) return;
    if (!window.crypto || !crypto.subtle) {
      output.textContent = "This page is not in a secure context (https or localhost), so WebCrypto is unavailable; use the commands below.";
      return;
    }
    button.hidden = false;
    button.addEventListener("click", async function () {
      button.disabled = true;
      output.textContent = "Checking…";
      delete output.dataset.result;
      var checks;
      try {
        checks = await run(section);
      } catch (err) {
        checks = [{ state: "fail", text: "Unexpected error: " + err.message }];
      }
      show(output, checks);
      button.disabled = false;
    });
  }

  function start() {
    document.querySelectorAll(".verify[data-manifest]").forEach(attach);
  }

  window.appshelfVerify = { canonicalize: canonicalize, run: run };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
