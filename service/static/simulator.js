// The simulator page: enrol a pretend family, talk as the parent, watch both phones.
(function () {
  "use strict";
  var ref = null;
  var base = document.location.pathname.replace(/\/$/, "");
  var $ = function (id) { return document.getElementById(id); };

  function api(method, path, body) {
    return fetch(base + "/api" + path, {
      method: method,
      headers: { "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
  }

  function draw(list, messages, ownSide) {
    list.innerHTML = "";
    messages.forEach(function (m) {
      var li = document.createElement("li");
      li.className = "bubble " + (m.direction === ownSide ? "mine" : "theirs");
      li.textContent = m.body || "(voice note or picture)";
      var meta = document.createElement("small");
      meta.textContent = m.direction === "out" ? " " + m.status : "";
      li.appendChild(meta);
      list.appendChild(li);
    });
    list.scrollTop = list.scrollHeight;
  }

  function quickReplies(messages) {
    var box = $("quick");
    box.innerHTML = "";
    var last = messages.filter(function (m) { return m.direction === "out"; }).pop();
    if (!last) { return; }
    (last.quick_replies || []).forEach(function (q) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = q;
      b.addEventListener("click", function () { send(q); });
      box.appendChild(b);
    });
  }

  function refresh() {
    if (!ref) { return; }
    api("GET", "/families/" + ref).then(function (r) {
      if (!r.ok) { return; }
      draw($("parent"), r.body.parent, "in");
      draw($("therapist"), r.body.therapist, "in");
      quickReplies(r.body.parent);
      $("info").textContent = "Family " + r.body.ref + " (child: " + r.body.child_name + ") - " +
        r.body.status + " - at " + r.body.step;
    });
  }

  function send(text) {
    if (!ref || !text.trim()) { return; }
    api("POST", "/families/" + ref + "/messages", { text: text }).then(function () {
      $("text").value = "";
      refresh();
    });
  }

  $("enrol").addEventListener("click", function () {
    api("POST", "/families", { child_name: $("child").value, channel: $("channel").value })
      .then(function (r) {
        if (!r.ok) { $("info").textContent = r.body.error || "Could not enrol."; return; }
        ref = r.body.ref;
        ["text", "send", "skip"].forEach(function (id) { $(id).disabled = false; });
        $("text").focus();
        refresh();
      });
  });
  $("say").addEventListener("submit", function (e) { e.preventDefault(); send($("text").value); });
  $("skip").addEventListener("click", function () {
    api("POST", "/tick", { days: 1 }).then(refresh);
  });
  setInterval(refresh, 2000);
})();
