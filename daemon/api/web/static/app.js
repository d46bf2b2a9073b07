// The station's page: plain DOM, talks only to this station (/api/*, /vapix/call, /axis-cgi/*).
// Every write carries the session's CSRF token; every API error is shown next to its field.
"use strict";

const $ = (id) => document.getElementById(id);
const RANK = { viewer: 0, operator: 1, admin: 2 };
const MAX_EVENTS = 30;
let me = null;              // {User, Role, CSRF}
let status = null;          // the last /api/status
let statusAt = 0;           // performance.now() when it arrived
let eventsAfter = null;     // the long-poll's position
let eventsGeneration = 0;   // bumps on log-out: an old loop stops
let testCallId = null;

class ApiError extends Error {
  constructor(httpStatus, data) {
    super((data && (data.FaultReason || data.FaultMsg)) || `The station answered HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    this.field = data && data.Field;
  }
}

async function api(method, path, body) {
  const headers = { "X-Doorstation-Page": "1" };
  if (me && me.CSRF) headers["X-CSRF-Token"] = me.CSRF;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, { method, headers, cache: "no-store", credentials: "same-origin",
                            body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { FaultReason: "The station cannot be reached" });
  }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401 && me && path !== "/api/session") sessionEnded();
  if (!r.ok || (data && data.Fault)) throw new ApiError(r.status, data);
  return data;
}

const vapix = (command, params) => api("POST", "/vapix/call", { ["axcall:" + command]: params || {} });

// -- forms and errors ---------------------------------------------------------------------------
function clearErrors(form) {
  form.querySelectorAll(".err").forEach((p) => { p.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

// The field an error concerns: the one the endpoint names, else the longest field key that the
// fault's reason mentions (VAPIX reasons name the parameter, e.g. "SIPAccount.Registrar ...").
function fieldFor(form, err) {
  const inputs = [...form.querySelectorAll("[data-key]")];
  if (err.field) {
    const named = inputs.find((el) => el.dataset.key === err.field);
    if (named) return named;
  }
  let best = null;
  for (const el of inputs) {
    const key = el.dataset.key;
    if (new RegExp("\\b" + key + "\\b").test(err.message) && (!best || key.length > best.dataset.key.length)) best = el;
  }
  return best;
}

function showError(form, err, field) {
  const el = field || fieldFor(form, err);
  const slot = el && $(el.id + "-err");
  if (slot) {
    slot.textContent = err.message;
    el.setAttribute("aria-invalid", "true");
    el.focus();
  } else {
    $(form.id + "-err").textContent = err.message;
  }
}

function bindForm(form, handler) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      await handler(form);
    } catch (err) {
      if (err instanceof ApiError) showError(form, err); else throw err;
    } finally {
      if (button) button.disabled = false;
    }
  });
}

async function guarded(form, work) {
  clearErrors(form);
  try { await work(); } catch (err) { if (err instanceof ApiError) showError(form, err); else throw err; }
}

function notice(text) { $("notice").textContent = text; }

// -- views --------------------------------------------------------------------------------------
function show(view) {
  for (const id of ["setup", "login", "app"]) $(id).hidden = id !== view;
  $("who").hidden = view !== "app";
}

async function start() {
  let s;
  try { s = await api("GET", "/api/session"); } catch (err) { notice(err.message); return; }
  if (s.FirstUse) {
    show("setup");
    if (!s.LocalNetwork) notice("The admin password can be set only from the local network.");
    $("setup-password").focus();
  } else if (s.User) {
    loggedIn(s);
  } else {
    show("login");
    $("login-user").focus();
  }
}

let pageUsed = false;        // a session ended on this page: controls of its role were removed

function sessionEnded() {
  pageUsed = true;
  me = null;
  eventsGeneration += 1;
  show("login");
  notice("Your session has ended: log in again.");
}

function loggedIn(s) {
  me = s;
  notice("");
  $("who-name").textContent = `${s.User} (${s.Role})`;
  $("users-me").textContent = `You are logged in as ${s.User}, role ${s.Role}.`;
  // Controls the role may not use are removed, not just hidden or disabled.
  document.querySelectorAll("[data-role]").forEach((el) => {
    if (RANK[s.Role] < RANK[el.dataset.role]) el.remove();
  });
  if (RANK[s.Role] < RANK.admin && $("open-door")) $("open-door").remove();
  show("app");
  $("main").focus();
  refreshStatus();
  loadSettings();
  followEvents(eventsGeneration);
}

// -- status -------------------------------------------------------------------------------------
function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  return (d ? `${d} d ` : "") + `${two(h)}:${two(m)}:${two(s)}`;
}

function setText(id, text, cls) {
  const el = $(id);
  if (!el) return;
  el.textContent = text;
  el.className = cls || "";
}

function registration(acc) {
  if (acc.Status === 200) return [`registered at ${acc.RegURI}`, "good"];
  if (!acc.Status) return [acc.StatusText || "not registered", ""];
  return [`not registered: ${acc.Status} ${acc.StatusText || ""}`.trim(), "bad"];
}

function renderStatus() {
  if (!status) return;
  const since = (performance.now() - statusAt) / 1000;
  const calls = status.Calls || [];
  if (calls.length) {
    setText("st-call", calls.map((c) => {
      const started = Date.parse(c.StartTime);
      const took = Number.isNaN(started) ? "" : `, ${duration((Date.now() - started) / 1000)}`;
      const dir = c.Direction === "Incoming" ? "from" : "to";
      return `${c.CallState} ${dir} ${c.RemoteURI || "?"}${took}`;
    }).join("; "), "good");
  } else {
    setText("st-call", status.CallState || "Idle");
  }
  const hw = status.Hardware;
  if (hw) {
    setText("st-relay", hw.Relay === "Unlocked" ? "open (unlocked)" : "locked", hw.Relay === "Unlocked" ? "good" : "");
    setText("st-led", String(hw.LED));
    setText("st-button", hw.ButtonPressed ? "pressed" : "not pressed");
    const audio = hw.Audio || {};
    const levels = audio.levels || {};
    const db = (v) => (v === null || v === undefined ? "silent" : `${v} dBFS`);
    setText("st-audio", `${audio.active ? "in use" : "idle"}; ${audio.frames_in || 0} frames in, ` +
      `${audio.frames_out || 0} out, ${audio.device_errors || 0} device errors` +
      (hw.SimulatedAudio ? " (simulated)" : "") +
      (audio.active ? `; microphone peak ${db(levels.mic_dbfs)}, speaker peak ${db(levels.speaker_dbfs)}` : ""));
  } else {
    for (const id of ["st-relay", "st-led", "st-button", "st-audio"]) setText(id, "no hardware configured");
  }
  const sip = status.SIPConfiguration || {};
  const sipState = { Applied: "in force", Applying: "being applied", NotApplied: "not applied yet", Failed: "failed" };
  setText("st-sip", (sipState[sip.State] || sip.State || "–") + (sip.Error ? `: ${sip.Error}` : ""),
          sip.State === "Failed" ? "bad" : "");
  setText("st-version", `doorstation ${status.Version}`);
  setText("st-uptime", status.Uptime == null ? "–" : duration(status.Uptime + since));
  const list = $("st-accounts");
  list.replaceChildren();
  for (const acc of status.Accounts || []) {
    if (!acc) continue;
    const li = document.createElement("li");
    const [text, cls] = registration(acc);
    li.append(`${acc.SIPAccountId} (${acc.SIPURI || "no address"}${acc.IsDefault ? ", default" : ""}): `);
    const span = document.createElement("span");
    span.textContent = text;
    span.className = cls;
    li.append(span);
    list.append(li);
  }
  if (!list.children.length) list.append(Object.assign(document.createElement("li"), { textContent: "no SIP account" }));
}

function renderHardwareConfig() {
  const dl = $("hw-config");
  const cfg = status && status.HardwareConfig;
  const rows = cfg ? [
    ["GPIO chip", cfg.GPIOChip || "simulated"],
    ...Object.entries(cfg.Lines || {}).map(([role, line]) => [role.replace(/_/g, " "), `line ${line}`]),
    ["Microphone", cfg.CaptureDevice || "simulated"],
    ["Speaker", cfg.PlaybackDevice || "simulated"],
    ["GPIO chips on the board", ((cfg.Present || {}).GPIOChips || []).map(
      (c) => `${c.Name}${c.Label ? ` (${c.Label}, ${c.Lines} lines)` : ""}`).join("; ") || "none"],
    ["Sound cards on the board", ((cfg.Present || {}).SoundCards || []).map(
      (c) => `${c.Device} (${c.Name})`).join("; ") || "none"],
  ] : [["Configured", "no hardware (the station runs without GPIO and audio)"]];
  dl.replaceChildren();
  for (const [term, value] of rows) {
    dl.append(Object.assign(document.createElement("dt"), { textContent: term }),
              Object.assign(document.createElement("dd"), { textContent: String(value) }));
  }
}

async function refreshStatus() {
  try {
    status = await api("GET", "/api/status");
    statusAt = performance.now();
    renderStatus();
    renderHardwareConfig();
  } catch (err) {
    if (err.httpStatus !== 401) setText("st-call", err.message, "bad");
  }
}

// Only the clocks tick locally (uptime, call duration); the state itself comes from events. The
// one exception: while the audio runs, its levels (a peak per second) are re-read every 2 s.
setInterval(() => { if (me) renderStatus(); }, 1000);
setInterval(() => { if (me && status && ((status.Hardware || {}).Audio || {}).active) refreshStatus(); }, 2000);

// -- events -------------------------------------------------------------------------------------
function inWords(ev) {
  const d = ev.data || {}, src = ev.source || {};
  switch (ev.topic) {
    case "tnsaxis:Call/State": return `Calls: ${d.CallState}`;
    case "tnsaxis:Call/StateChange": return `Call ${d.CallId}: ${d.Reason}${d.RemoteURI ? " (" + d.RemoteURI + ")" : ""}`;
    case "tnsaxis:Call/DTMF": return `Code entered on call ${d.CallId}: ${src.Name || src.DTMFEventId}`;
    case "doorstation:Relay": {
      if (d.State !== "Unlocked") return `Door locked (${d.Cause || "pulse ended"})`;
      const who = d.User || d.api;
      const by = d.Cause === "DTMF" ? "by a door code" : who ? `by ${who}` : d.Cause ? `(${d.Cause})` : "";
      return `Door opened ${by}`.trim();
    }
    case "doorstation:Button": return d.Action === "Call" ? `Call button pressed: calling ${d.To}` : `Call button: ${d.Action || "pressed"}`;
    case "doorstation:Input": return `Input ${d.Input} ${d.Active ? "active" : "inactive"}`;
    case "doorstation:Output": return `Output ${d.Output} ${d.Active ? "on" : "off"}${d.User ? " by " + d.User : ""}`;
    case "doorstation:Intercom/CallFailed": return `Call to ${d.To} failed: ${d.Error}`;
    case "doorstation:SIP/Applied": return d.State === "Failed" ? `SIP settings failed: ${d.Error || "?"}` : "SIP settings in force";
    case "doorstation:SIP/AccountStatus": {
      const [text] = registration(d);
      return `SIP account ${d.SIPAccountId}: ${text}`;
    }
    default: return `${ev.topic} ${JSON.stringify(d)}`;
  }
}

const inputs = new Map();    // input name -> active, from the event log (the status has no list)

function renderInputs() {
  const parts = [...inputs].map(([name, active]) => `${name}: ${active ? "active" : "inactive"}`);
  setText("st-inputs", parts.length ? parts.join(", ") : "no change seen yet");
}

function addEvents(events) {
  const list = $("event-list");
  for (const ev of events) {
    if (ev.topic === "doorstation:Input") inputs.set(ev.data.Input, !!ev.data.Active);
    const li = document.createElement("li");
    const time = document.createElement("time");
    const when = new Date(ev.time * 1000);
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString();
    li.append(time, inWords(ev));
    list.prepend(li);
  }
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  renderInputs();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function followEvents(generation) {
  // Catch up to the end of the log (bounded), keeping the last few, then long-poll.
  if (eventsAfter === null) {
    let after = 0, last = [];
    for (let i = 0; i < 20; i += 1) {
      let page;
      try { page = await api("GET", `/api/events?after=${after}&wait=0&limit=1000`); } catch (err) { break; }
      after = page.next;
      last = last.concat(page.events).slice(-MAX_EVENTS);
      if (page.events.length < 1000) break;
    }
    eventsAfter = after;
    addEvents(last);
  }
  let failures = 0;
  while (generation === eventsGeneration && me) {
    try {
      const page = await api("GET", `/api/events?after=${eventsAfter}&wait=25`);
      failures = 0;
      if (generation !== eventsGeneration) return;
      eventsAfter = page.next;
      if (page.events.length) {
        addEvents(page.events);
        await refreshStatus();
      }
    } catch (err) {
      if (err.httpStatus === 401) return;
      failures = Math.min(failures + 1, 5);
      await sleep(1000 * failures);
    }
  }
}

// -- settings -----------------------------------------------------------------------------------
const isAdmin = () => me && me.Role === "admin";
let accounts = [];

function fillAccountSelects() {
  for (const id of ["call-account", "acc-id", "door-account"]) {
    const sel = $(id);
    if (!sel) continue;
    const keep = sel.value;
    const first = id === "door-account" ? [] : [sel.options[0]];
    sel.replaceChildren(...first);
    for (const a of accounts) {
      const label = a.Registrar ? `${a.Id}: ${a.UserId || "?"}@${a.Registrar}` : `${a.Id} (peer-to-peer)`;
      sel.append(new Option(label, a.Id));
    }
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
}

async function loadAccounts() {
  const data = await vapix("GetSIPAccounts");
  accounts = data.SIPAccounts || data.SIPAccount || [];
  fillAccountSelects();
}

async function loadSettings() {
  try { await loadAccounts(); } catch (err) { /* shown by the forms that need them */ }
  loadHardware();
  if (!isAdmin()) return;
  try {
    const c = (await vapix("GetSIPConfiguration")).SIPConfiguration || {};
    $("sip-enabled").checked = !!c.SIPEnabled;
    $("sip-incoming").checked = !!c.AllowIncomingCalls;
    $("sip-port").value = c.SIPPort ?? "";
    $("sip-tls-port").value = c.SIPTLSPort ?? "";
    $("sip-acl-on").checked = !!(c.ApplyAccessList ?? c.ApplyAllowedURIs);
    $("sip-acl").value = (c.AccessList || c.AllowedURIs || []).join("\n");
    $("sip-acl-policy").value = c.AccessListPolicy || "Allow";
  } catch (err) { showError($("sip-form"), err); }
  try {
    const v = (await vapix("GetVMSCallConfiguration")).VMSCallConfiguration || {};
    $("vms-enabled").checked = !!v.Enabled;
    $("vms-timeout").value = v.Timeout ?? "";
  } catch (err) { showError($("vms-form"), err); }
  loadCodecs();
  loadUsers();
}

const asInt = (text) => (/^\s*\d+\s*$/.test(text) ? Number(text) : text);

function wireSettings() {
  bindForm($("sip-form"), async () => {
    await vapix("SetSIPConfiguration", { SIPConfiguration: {
      SIPEnabled: $("sip-enabled").checked, AllowIncomingCalls: $("sip-incoming").checked,
      SIPPort: asInt($("sip-port").value), SIPTLSPort: asInt($("sip-tls-port").value),
      ApplyAccessList: $("sip-acl-on").checked,
      AccessList: $("sip-acl").value.split("\n").map((l) => l.trim()).filter(Boolean),
      AccessListPolicy: $("sip-acl-policy").value } });
    notice("SIP settings saved.");
  });

  const kindChanged = () => {
    const p2p = $("acc-kind-p2p").checked;
    document.querySelectorAll(".reg-only").forEach((el) => { el.hidden = p2p; });
  };
  $("acc-kind-reg").addEventListener("change", kindChanged);
  $("acc-kind-p2p").addEventListener("change", kindChanged);
  $("acc-id").addEventListener("change", () => {
    const a = accounts.find((x) => x.Id === $("acc-id").value);
    $("acc-user").value = a ? a.UserId || "" : "";
    $("acc-registrar").value = a ? a.Registrar || "" : "";
    $("acc-password").value = "";
    $("acc-default").checked = a ? !!a.IsDefault : true;
    (a && !a.Registrar ? $("acc-kind-p2p") : $("acc-kind-reg")).checked = true;
    kindChanged();
  });
  bindForm($("account-form"), async () => {
    const account = { UserId: $("acc-user").value, IsDefault: $("acc-default").checked };
    if ($("acc-id").value) account.Id = $("acc-id").value;
    if ($("acc-kind-p2p").checked) {
      account.Registrar = "";
    } else {
      account.Registrar = $("acc-registrar").value;
      if ($("acc-password").value) account.Password = $("acc-password").value;
    }
    const r = await vapix("SetSIPAccount", { SIPAccount: account });
    await loadAccounts();
    if (r.SIPAccountId) $("acc-id").value = r.SIPAccountId;
    $("acc-password").value = "";
    notice(`SIP account ${r.SIPAccountId || account.Id} saved; its registration shows under Status.`);
  });
  $("acc-remove").addEventListener("click", () => guarded($("account-form"), async () => {
    if (!$("acc-id").value) throw new ApiError(400, { FaultReason: "Choose an account to remove", Field: "Id" });
    await vapix("RemoveSIPAccount", { SIPAccountId: $("acc-id").value });
    $("acc-id").value = "";
    await loadAccounts();
    notice("SIP account removed.");
  }));
  bindForm($("test-form"), async () => {
    const params = { To: $("test-to").value };
    if ($("acc-id").value) params.SIPAccountId = $("acc-id").value;
    const r = await vapix("Call", params);
    testCallId = r.CallId;
    $("test-result").textContent = `Calling ${params.To} (call ${r.CallId}); the state shows under Status.`;
  });
  $("test-hang-up").addEventListener("click", () => guarded($("test-form"), async () => {
    if (testCallId) await vapix("TerminateCall", { CallId: testCallId });
    $("test-result").textContent = testCallId ? "Hung up." : "No test call.";
    testCallId = null;
  }));

  bindForm($("door-form"), async (form) => {
    const code = $("door-code").value.trim(), account = $("door-account").value;
    if (!account) {
      showError(form, new ApiError(400, { FaultReason: "Add a SIP account first" }), $("door-account"));
      return;
    }
    const created = [];
    try {
      const e = (await vapix("SetDTMFEvent", { DTMFEvent: { Name: "OpenDoor" } })).DTMFEventId;
      created.push(["RemoveDTMFEvent", { DTMFEventId: e }]);
      const t = (await vapix("SetDTMFTrigger", { DTMFTrigger: { DTMFSequence: code, DTMFEventId: e } })).DTMFTriggerId;
      created.push(["RemoveDTMFTrigger", { DTMFTriggerId: t }]);
      const c = (await vapix("SetDTMFConfiguration", { DTMFConfiguration: { Name: "Door", DTMFTriggerId: [t] } })).DTMFConfigurationId;
      created.push(["RemoveDTMFConfiguration", { DTMFConfigurationId: c }]);
      await vapix("SetSIPAccount", { SIPAccount: { Id: account, DTMFConfigurationId: c } });
      const bound = (await api("GET", "/api/door/bindings")).DTMFEventIds || [];
      await api("PUT", "/api/door/bindings", { DTMFEventIds: [...bound, e] });
      $("door-result").textContent = `Code saved: ${code} on ${account} opens the door.`;
    } catch (err) {
      for (const [cmd, params] of created.reverse()) {
        try { await vapix(cmd, params); } catch (ignored) { /* best effort */ }
      }
      throw err;
    }
  });

  bindForm($("vms-form"), async () => {
    await vapix("SetVMSCallConfiguration", { VMSCallConfiguration: {
      Enabled: $("vms-enabled").checked, Timeout: asInt($("vms-timeout").value) } });
    notice("VMS call settings saved.");
  });

  bindForm($("codecs-form"), async () => {
    const items = [...$("codec-list").children].filter((li) => li.querySelector("input").checked)
      .map((li) => ({ Name: li.dataset.name, SampleRate: Number(li.dataset.rate) }));
    await vapix("SetAudioCodecs", { AudioCodec: items });
    notice("Codec order saved.");
  });
}

async function loadCodecs() {
  try {
    const current = (await vapix("GetAudioCodecs")).AudioCodec || [];
    const supported = (await vapix("GetSupportedAudioCodecs")).AudioCodec || [];
    const key = (c) => `${c.Name}/${c.SampleRate}`;
    const chosen = new Set(current.map(key));
    const list = $("codec-list");
    list.replaceChildren();
    for (const c of [...current, ...supported.filter((s) => !chosen.has(key(s)))]) {
      const li = document.createElement("li");
      li.className = "codec";
      li.dataset.name = c.Name;
      li.dataset.rate = c.SampleRate;
      const id = `codec-${c.Name}-${c.SampleRate}`.replace(/[^A-Za-z0-9-]/g, "_");
      const box = Object.assign(document.createElement("input"), { type: "checkbox", id, checked: chosen.has(key(c)) });
      const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: `${c.Name} ${c.SampleRate / 1000} kHz` });
      const span = document.createElement("span");
      span.append(box, " ", label);
      const up = Object.assign(document.createElement("button"), { type: "button", textContent: "Up" });
      const down = Object.assign(document.createElement("button"), { type: "button", textContent: "Down" });
      up.setAttribute("aria-label", `Move ${c.Name} ${c.SampleRate / 1000} kHz up`);
      down.setAttribute("aria-label", `Move ${c.Name} ${c.SampleRate / 1000} kHz down`);
      up.addEventListener("click", () => { if (li.previousElementSibling) { li.previousElementSibling.before(li); up.focus(); } });
      down.addEventListener("click", () => { if (li.nextElementSibling) { li.nextElementSibling.after(li); down.focus(); } });
      li.append(span, up, down);
      list.append(li);
    }
  } catch (err) { showError($("codecs-form"), err); }
}

async function loadHardware() {
  const list = $("hw-ports");
  try {
    const r = await api("POST", "/axis-cgi/io/portmanagement.cgi", { apiVersion: "1.0", method: "getPorts" });
    list.replaceChildren();
    for (const p of (r.data && r.data.items) || []) {
      const li = document.createElement("li");
      li.textContent = `Port ${p.port}: ${p.name || p.usage || ""} (${p.direction}, ${p.state})`;
      list.append(li);
    }
    $("hw-note").textContent = "An invalid hardware.toml stops the station at start with a message naming the key, " +
      "so a running station has no configuration errors to show.";
  } catch (err) {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: err.message }));
  }
}

// -- actions --------------------------------------------------------------------------------------
function wireActions() {
  if (!$("call-form")) return;
  bindForm($("call-form"), async () => {
    const params = { To: $("call-to").value };
    if ($("call-account").value) params.SIPAccountId = $("call-account").value;
    await vapix("Call", params);
  });
  $("hang-up").addEventListener("click", () => guarded($("call-form"), async () => {
    const calls = ((await vapix("GetCallStatuses")).CallStatus || [])
      .filter((c) => c.CallState === "Calling" || c.CallState === "Active" || c.CallState === "Ringing");
    for (const c of calls) await vapix("TerminateCall", { CallId: c.CallId });
    notice(calls.length ? "Hung up." : "There is no call to hang up.");
  }));
  if ($("open-door")) {
    // returnValue outlives the dialog: reset it, or Escape would repeat the last "yes"
    $("open-door").addEventListener("click", () => { $("confirm").returnValue = ""; $("confirm").showModal(); });
    $("confirm").addEventListener("close", () => {
      if ($("confirm").returnValue !== "yes") return;
      guarded($("call-form"), async () => {
        await api("POST", "/api/door/open");
        notice("Door opened.");
      });
    });
  }
}

// -- users (VAPIX pwdgrp.cgi: form fields in, one text line out, "# Error: ..." with a status) ----
const ROLE_SGRP = { viewer: "viewer", operator: "viewer:operator", admin: "viewer:operator:admin" };
let userRoles = new Map();   // name -> role, from the last action=get

// The field a pwdgrp.cgi refusal concerns (its reasons come from the station's user store).
function pwdgrpField(reason) {
  if (/password/i.test(reason)) return "pwd";
  if (/sgrp|role|last admin/i.test(reason)) return "sgrp";
  if (/user|account|name/i.test(reason)) return "user";
  return null;
}

async function pwdgrp(fields) {
  const headers = { "X-Doorstation-Page": "1", "Content-Type": "application/x-www-form-urlencoded" };
  if (me && me.CSRF) headers["X-CSRF-Token"] = me.CSRF;
  let r;
  try {
    r = await fetch("/axis-cgi/pwdgrp.cgi", { method: "POST", headers, cache: "no-store", credentials: "same-origin",
                                              body: new URLSearchParams(fields).toString() });
  } catch (e) {
    throw new ApiError(0, { FaultReason: "The station cannot be reached" });
  }
  const text = await r.text();
  if (r.status === 401 && me) sessionEnded();
  if (!r.ok) {
    let data = null;
    try { data = JSON.parse(text); } catch (e) { data = null; }   // the page gate answers JSON
    if (!data || !data.FaultReason) {
      let reason = text.replace(/^# Error:\s*/, "").trim() || `The station answered HTTP ${r.status}`;
      if (/last admin/.test(reason)) reason += ": the station needs one, add another admin first";
      data = { FaultReason: reason, Field: pwdgrpField(reason) };
    }
    throw new ApiError(r.status, data);
  }
  return text;
}

function parseGroups(text) {
  const groups = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Za-z-]+)="([^"]*)"$/.exec(line.trim());
    if (m) groups[m[1]] = m[2] ? m[2].split(",") : [];
  }
  return groups;
}

async function loadUsers() {
  if (!$("user-rows")) return;
  try {
    const g = parseGroups(await pwdgrp({ action: "get" }));
    const roleOf = (n) => ((g.admin || []).includes(n) ? "admin" : (g.operator || []).includes(n) ? "operator" : "viewer");
    userRoles = new Map((g.users || []).map((n) => [n, roleOf(n)]));
    const rows = $("user-rows"), pick = $("user-edit-name"), keep = pick.value;
    rows.replaceChildren();
    pick.replaceChildren();
    for (const [name, role] of userRoles) {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("td"), { textContent: name }),
                Object.assign(document.createElement("td"), { textContent: role }));
      rows.append(tr);
      pick.append(new Option(name, name));
    }
    if (userRoles.has(keep)) pick.value = keep;
    if (userRoles.has(pick.value)) $("user-edit-role").value = userRoles.get(pick.value);
  } catch (err) { showError($("user-edit-form"), err); }
}

function wireUsers() {
  const mismatch = (form, again) =>
    showError(form, new ApiError(400, { FaultReason: "The two passwords differ" }), again);
  bindForm($("user-add-form"), async (form) => {
    if ($("user-add-password").value !== $("user-add-again").value) return mismatch(form, $("user-add-again"));
    const name = $("user-add-name").value.trim(), role = $("user-add-role").value;
    await pwdgrp({ action: "add", user: name, pwd: $("user-add-password").value, grp: "users", sgrp: ROLE_SGRP[role] });
    form.reset();
    await loadUsers();
    notice(`User ${name} added as ${role}.`);
  });
  $("user-edit-name").addEventListener("change", () => {
    const role = userRoles.get($("user-edit-name").value);
    if (role) $("user-edit-role").value = role;
  });
  bindForm($("user-edit-form"), async (form) => {
    const name = $("user-edit-name").value, role = $("user-edit-role").value;
    if (!name) return showError(form, new ApiError(400, { FaultReason: "Choose a user" }), $("user-edit-name"));
    if ($("user-edit-password").value !== $("user-edit-again").value) return mismatch(form, $("user-edit-again"));
    const fields = { action: "update", user: name };
    if (role !== userRoles.get(name)) fields.sgrp = ROLE_SGRP[role];
    if ($("user-edit-password").value) fields.pwd = $("user-edit-password").value;
    if (!fields.sgrp && !fields.pwd) { notice(`Nothing to change for ${name}.`); return; }
    await pwdgrp(fields);
    $("user-edit-password").value = "";
    $("user-edit-again").value = "";
    notice(`User ${name} changed${name === me.User ? "; your session ends: log in again" : ""}.`);
    await loadUsers();
  });
  $("user-remove").addEventListener("click", () => {
    const form = $("user-edit-form"), name = $("user-edit-name").value;
    clearErrors(form);
    if (!name) { showError(form, new ApiError(400, { FaultReason: "Choose a user" }), $("user-edit-name")); return; }
    $("confirm-remove-text").textContent = `${name} (${userRoles.get(name) || "?"}) can no longer log in or use the API.`;
    $("confirm-remove").returnValue = "";
    $("confirm-remove").showModal();
  });
  $("confirm-remove").addEventListener("close", async () => {
    if ($("confirm-remove").returnValue !== "yes") return;
    const form = $("user-edit-form"), name = $("user-edit-name").value;
    try {
      await pwdgrp({ action: "remove", user: name });
      notice(`User ${name} removed.`);
      await loadUsers();
    } catch (err) {
      if (err instanceof ApiError) showError(form, err, $("user-edit-name")); else throw err;
    }
  });
}

// -- set-up, log-in, log-out ----------------------------------------------------------------------
function wireSession() {
  bindForm($("setup-form"), async (form) => {
    if ($("setup-password").value !== $("setup-again").value) {
      showError(form, new ApiError(400, { FaultReason: "The two passwords differ" }), $("setup-again"));
      return;
    }
    const s = await api("POST", "/api/setup", { Password: $("setup-password").value });
    form.reset();
    loggedIn(s);
    notice("The admin password is set. Keep it safe: it cannot be shown again.");
  });
  bindForm($("login-form"), async (form) => {
    const s = await api("POST", "/api/session", { User: $("login-user").value, Password: $("login-password").value });
    form.reset();
    if (pageUsed) location.reload();   // a fresh page for the new session's role
    else loggedIn(s);
  });
  $("logout").addEventListener("click", async () => {
    try { await api("DELETE", "/api/session"); } catch (err) { /* the session is gone either way */ }
    location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireSession();
  wireSettings();
  wireActions();
  wireUsers();
  start();
});
