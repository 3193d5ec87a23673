// The simulator page: enrol a pretend family, talk as the parent, watch both phones.
// The family's reference lives in the address (#F-...), so a reload or a shared link resumes it.
(function () {
  "use strict";
  var ref = null;
  var drawn = "";
  var busy = false;
  var base = document.location.pathname.replace(/\/$/, "");
  var $ = function (id) { return document.getElementById(id); };
  var QUIET_STATUSES = ["simulated", "received", "queued", "sent", "delivered", "read"];

  function api(method, path, body) {
    return fetch(base + "/api" + path, {
      method: method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": document.querySelector("meta[name=csrf-token]").content },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json()
        .catch(function () { return { error: r.status + " " + r.statusText }; })
        .then(function (j) { return { ok: r.ok, body: j }; });
    }, function () {
      return { ok: false, body: { error: "The demo is not answering. Is bravesteps demo still running?" } };
    });
  }

  function when(iso, withDate) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    var options = { weekday: "short", hour: "2-digit", minute: "2-digit" };
    if (withDate) { options.day = "numeric"; options.month = "short"; }
    return d.toLocaleString(undefined, options);
  }

  function bubble(m, ownSide) {
    var li = document.createElement("li");
    li.className = "bubble " + (m.direction === ownSide ? "mine" : "theirs");
    var text = document.createElement("span");
    text.textContent = m.body || "(voice note or picture)";
    li.appendChild(text);
    var meta = document.createElement("small");
    var status = m.direction === "out" && QUIET_STATUSES.indexOf(m.status) < 0 ? " - " + m.status : "";
    meta.textContent = when(m.at, false) + status;
    li.appendChild(meta);
    return li;
  }

  function draw(list, messages, ownSide, empty) {
    list.innerHTML = "";
    if (!messages.length) {
      var li = document.createElement("li");
      li.className = "empty";
      li.textContent = empty;
      list.appendChild(li);
    }
    messages.forEach(function (m) { list.appendChild(bubble(m, ownSide)); });
    list.scrollTop = list.scrollHeight;
  }

  function quickReplies(messages) {
    var box = $("quick");
    box.innerHTML = "";
    var last = messages[messages.length - 1];
    if (!last || last.direction !== "out") { return; }
    (last.quick_replies || []).forEach(function (q) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = q;
      b.addEventListener("click", function () { send(q); });
      box.appendChild(b);
    });
  }

  function show(view) {
    $("family").textContent = view.ref;
    $("child-name").textContent = view.child_name;
    $("family-channel").textContent = view.channel === "whatsapp" ? "WhatsApp" : "SMS";
    $("family-status").textContent = view.status;
    $("family-step").textContent = view.step;
    $("clock").textContent = when(view.now, true);
    $("details").hidden = false;
  }

  function refresh() {
    if (!ref) { return Promise.resolve(); }
    return api("GET", "/families/" + ref).then(function (r) {
      if (!r.ok) { say(r.body.error || "Could not load the family."); return; }
      var signature = JSON.stringify(r.body);
      if (signature === drawn) { return; }
      drawn = signature;
      show(r.body);
      draw($("parent"), r.body.parent, "in", "Nothing yet.");
      draw($("therapist"), r.body.therapist, "in", "No alerts. They arrive here when a parent needs a person.");
      quickReplies(r.body.parent);
    });
  }

  function say(text) { $("info").textContent = text; }

  function setBusy(value) {
    busy = value;
    ["text", "send", "skip", "skip-days"].forEach(function (id) { $(id).disabled = value || !ref; });
  }

  function use(newRef) {
    ref = newRef;
    drawn = "";
    if (document.location.hash !== "#" + ref) { history.replaceState(null, "", "#" + ref); }
    setBusy(false);
    say("Reply as the parent below, or use the quick replies.");
    return refresh();
  }

  function send(text) {
    if (!ref || busy || !text.trim()) { return; }
    setBusy(true);
    api("POST", "/families/" + ref + "/messages", { text: text }).then(function (r) {
      if (!r.ok) { say(r.body.error || "Could not send."); } else { $("text").value = ""; }
      return refresh();
    }).then(function () { setBusy(false); $("text").focus(); });
  }

  $("enrol").addEventListener("click", function () {
    $("enrol").disabled = true;
    api("POST", "/families", { child_name: $("child").value, channel: $("channel").value })
      .then(function (r) {
        $("enrol").disabled = false;
        if (!r.ok) { say(r.body.error || "Could not enrol."); return; }
        use(r.body.ref).then(function () { $("text").focus(); });
      });
  });
  $("say").addEventListener("submit", function (e) { e.preventDefault(); send($("text").value); });
  $("skip").addEventListener("click", function () {
    if (busy) { return; }
    setBusy(true);
    var choice = $("skip-days");
    api("POST", "/tick", { days: parseFloat(choice.value) }).then(function (r) {
      if (r.ok) {
        say("Skipped ahead " + choice.options[choice.selectedIndex].text + ", to " + when(r.body.now, true) + ".");
        $("info").title = r.body.summary;
      } else {
        say(r.body.error || "Could not skip ahead.");
      }
      return refresh();
    }).then(function () { setBusy(false); });
  });

  var fromAddress = /^#(F-[A-Z0-9]+)$/.exec(document.location.hash);
  if (fromAddress) { use(fromAddress[1]); }
  setInterval(function () { if (!busy) { refresh(); } }, 2000);
})();
