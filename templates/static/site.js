/* appshelf site: instant search and filters over index.json, and copy buttons.
   Progressive: without JavaScript the full list and every link still work. */
(function () {
  "use strict";
  var PAGE = 60;

  function initCopy() {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.setAttribute("aria-label",
        button.dataset.copyLabel || "Copy SHA-256 " + button.dataset.copy.slice(0, 12) + "…");
      button.addEventListener("click", function () {
        var text = button.dataset.copy;
        var done = function (ok) {
          button.textContent = ok ? "Copied" : "Copy failed";
          button.classList.toggle("done", ok);
          setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 1600);
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
        } else {
          done(false);
        }
      });
    });
  }

  function Finder(root) {
    this.root = root;
    this.base = root.dataset.root;
    this.form = root.querySelector("form");
    this.input = root.querySelector("#q");
    this.tag = root.querySelector("#tag");
    this.chips = Array.prototype.slice.call(root.querySelectorAll(".chip"));
    this.all = document.getElementById("all-apps");
    this.results = document.getElementById("results");
    this.status = document.getElementById("status");
    this.more = document.getElementById("more");
    this.pager = document.querySelector(".pager");
    this.template = document.getElementById("card-template");
    this.initialStatus = this.status.textContent;
    this.category = "";
    this.apps = null;
    this.loading = null;
    this.matches = [];
    this.shown = 0;
  }

  Finder.prototype.start = function () {
    var self = this;
    this.form.hidden = false;
    var group = this.root.querySelector(".categories");
    if (group) group.hidden = false;
    var params = new URLSearchParams(location.search);
    this.input.value = params.get("q") || "";
    this.setTag(params.get("tag") || "");
    this.setCategory(params.get("category") || "");
    this.form.addEventListener("submit", function (e) { e.preventDefault(); self.update(); });
    this.input.addEventListener("input", function () { self.update(); });
    this.input.addEventListener("focus", function () { self.load(); }, { once: true });
    this.tag.addEventListener("change", function () { self.update(); });
    this.chips.forEach(function (chip) {
      chip.addEventListener("click", function () { self.setCategory(chip.dataset.category); self.update(); });
    });
    this.more.addEventListener("click", function () { self.render(self.shown + PAGE); });
    if (this.active()) this.update();
  };

  Finder.prototype.setTag = function (value) {
    var known = Array.prototype.some.call(this.tag.options, function (o) { return o.value === value; });
    this.tag.value = known ? value : "";
  };

  Finder.prototype.setCategory = function (value) {
    var found = this.chips.some(function (c) { return c.dataset.category === value; });
    this.category = found ? value : "";
    var current = this.category;
    this.chips.forEach(function (chip) {
      chip.setAttribute("aria-pressed", String(chip.dataset.category === current));
    });
  };

  Finder.prototype.active = function () {
    return Boolean(this.input.value.trim() || this.tag.value || this.category);
  };

  Finder.prototype.load = function () {
    var self = this;
    if (!this.loading) {
      this.loading = fetch(this.root.dataset.index)
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (index) { self.apps = prepare(index.apps || []); })
        .catch(function (err) {
          self.status.textContent = "Search is unavailable (" + err.message + "); every app is listed below.";
          self.loading = null;
          throw err;
        });
    }
    return this.loading;
  };

  function prepare(apps) {
    /* Starter templates have their own page (templates/index.html). */
    apps = apps.filter(function (app) { return app.kind !== "template"; });
    return apps.map(function (app) {
      var words = [app.key, app.name, app.description, app.category || ""]
        .concat(app.tags || [], app.provides || [], app.requires || []);
      return { app: app, text: words.join("\n").toLowerCase(), name: app.name.toLowerCase() };
    });
  }

  /* Every word must occur somewhere; names and keys that match rank first, then the
     registry's order (by key). */
  Finder.prototype.search = function (query, tag, category) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var out = [];
    var buckets = [];
    var apps = this.apps;
    outer: for (var i = 0; i < apps.length; i++) {
      var entry = apps[i];
      var app = entry.app;
      if (tag && (!app.tags || app.tags.indexOf(tag) < 0)) continue;
      if (category && app.category !== category) continue;
      var score = 0;
      for (var w = 0; w < words.length; w++) {
        var at = entry.text.indexOf(words[w]);
        if (at < 0) continue outer;
        if (app.key === words[w] || entry.name === words[w]) score += 8;
        else if (entry.name.indexOf(words[w]) === 0 || app.key.indexOf(words[w]) === 0) score += 4;
        else if (entry.name.indexOf(words[w]) >= 0) score += 2;
      }
      (buckets[score] || (buckets[score] = [])).push(app);
    }
    /* Scores are small integers: bucket them (linear) instead of sorting 10,000 items. */
    for (var s = buckets.length - 1; s >= 0; s--) {
      if (buckets[s]) Array.prototype.push.apply(out, buckets[s]);
    }
    return out;
  };

  Finder.prototype.update = function () {
    var self = this;
    this.syncUrl();
    if (!this.active()) {
      this.results.hidden = true;
      this.more.hidden = true;
      this.all.hidden = false;
      if (this.pager) this.pager.hidden = false;
      this.status.textContent = this.initialStatus;
      return;
    }
    if (!this.apps) {
      this.load().then(function () { self.update(); }, function () {});
      return;
    }
    this.matches = this.search(this.input.value, this.tag.value, this.category);
    this.all.hidden = true;
    if (this.pager) this.pager.hidden = true;
    this.results.hidden = false;
    this.render(PAGE);
  };

  Finder.prototype.render = function (count) {
    var list = this.results;
    var fragment = document.createDocumentFragment();
    var limit = Math.min(count, this.matches.length);
    var start = count > PAGE ? this.shown : 0;
    if (start === 0) list.textContent = "";
    for (var i = start; i < limit; i++) fragment.appendChild(this.card(this.matches[i]));
    list.appendChild(fragment);
    this.shown = limit;
    var total = this.matches.length;
    this.more.hidden = limit >= total;
    this.more.textContent = "Show more (" + (total - limit) + " left)";
    this.status.textContent = total === 0 ? "No app matches." :
      total + (total === 1 ? " app matches" : " apps match") + (limit < total ? ", showing " + limit : "") + ".";
  };

  Finder.prototype.card = function (app) {
    var node = this.template.content.firstElementChild.cloneNode(true);
    var base = this.base;
    var slot = function (name) { return node.querySelector('[data-slot="' + name + '"]'); };
    var link = slot("link");
    link.href = base + "apps/" + encodeURIComponent(app.key) + "/index.html";
    link.textContent = app.name;
    slot("key").textContent = app.key;
    var version = slot("version");
    if (app.latest) version.textContent = "v" + app.latest; else version.remove();
    slot("desc").textContent = app.description;
    var icon = node.querySelector(".app-icon");
    icon.style.setProperty("--app-color", app.color);
    if (app.icon) {
      var img = document.createElement("img");
      img.src = base + app.icon.split("/").map(encodeURIComponent).join("/");
      img.alt = "";
      img.width = 40; img.height = 40; img.loading = "lazy";
      icon.appendChild(img);
    } else {
      var initial = document.createElement("span");
      initial.setAttribute("aria-hidden", "true");
      initial.textContent = (app.name.trim()[0] || app.key[0]).toUpperCase();
      icon.appendChild(initial);
    }
    var tags = slot("tags");
    (app.tags || []).forEach(function (tag) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = base + "index.html?tag=" + encodeURIComponent(tag);
      a.textContent = tag;
      li.appendChild(a);
      tags.appendChild(li);
    });
    return node;
  };

  Finder.prototype.syncUrl = function () {
    var params = new URLSearchParams();
    if (this.input.value.trim()) params.set("q", this.input.value.trim());
    if (this.tag.value) params.set("tag", this.tag.value);
    if (this.category) params.set("category", this.category);
    var query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + location.hash);
  };

  /* A version's details are a collapsed <details> on the app page (id "v-<version>"):
     open the one the address or a same-page link names, and bring it into view. */
  function revealTarget() {
    var id = location.hash.slice(1);
    if (!id) return;
    try { id = decodeURIComponent(id); } catch (err) { return; }
    var target = document.getElementById(id);
    var details = target && target.closest("details");
    if (!details || details.open) return;
    details.open = true;
    target.scrollIntoView();
  }

  function initTargets() {
    revealTarget();
    window.addEventListener("hashchange", revealTarget);
    document.addEventListener("click", function (event) {  /* the same hash again */
      var link = event.target.closest && event.target.closest('a[href^="#"]');
      if (link && link.getAttribute("href") === location.hash) setTimeout(revealTarget);
    });
  }

  function start() {
    initCopy();
    initTargets();
    var finder = document.getElementById("finder");
    if (finder) {
      window.appshelfFinder = new Finder(finder);
      window.appshelfFinder.start();
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
