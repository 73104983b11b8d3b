// Tenet dashboard: one page over the REST API (/v1/…), with the caller's token.
//
// Views (by the URL's hash): #/ overview, #/tenant/<name>, #/jobs, and the login
// form when the tab holds no token. Every view is built from API answers only;
// values are escaped (the `h` template below), and geometry is set through the
// CSSOM (the page's CSP forbids inline styles). Views refresh themselves on a timer
// while they are shown; a part the user is working in (focus inside it) is not
// replaced under them.
'use strict';

// ---- small helpers ------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Markup that is not escaped again when it is put into `h`. */
class Raw { constructor(s) { this.s = s; } toString() { return this.s; } }
const raw = (s) => new Raw(s);
const escapeText = (v) => String(v ?? '').replace(/[&<>"']/g,
  (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const piece = (v) => v instanceof Raw ? v.s
  : Array.isArray(v) ? v.map(piece).join('')
  : (v === null || v === undefined || v === false) ? '' : escapeText(v);
/** A template whose values are escaped (arrays joined, `raw` kept, null dropped). */
function h(strings, ...vals) {
  let out = strings[0];
  vals.forEach((v, i) => { out += piece(v) + strings[i + 1]; });
  return raw(out);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
function bytes(n) {
  n = Number(n || 0);
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + '\u00a0' + UNITS[i];
}
function duration(secs) {
  secs = Math.max(0, Math.round(Number(secs)));
  if (secs < 60) return secs + ' s';
  const m = Math.floor(secs / 60);
  if (m < 60) return m + ' min' + (secs % 60 && m < 10 ? ' ' + (secs % 60) + ' s' : '');
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return hrs + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
  return Math.floor(hrs / 24) + ' d' + (hrs % 24 ? ' ' + (hrs % 24) + ' h' : '');
}
const ms = (t) => t ? Date.parse(t) : NaN;
/** A time as UTC, to the second ("2026-11-26 03:31:57 UTC"). */
function when(t) {
  if (!t) return '—';
  const d = new Date(typeof t === 'number' ? t : ms(t));
  return isNaN(d) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '\u00a0UTC');
}
function ago(t) {
  if (!t) return 'never';
  return duration((Date.now() - ms(t)) / 1000) + ' ago';
}
const human = (k) => k.replace(/_/g, ' ');

/** Seconds of a duration: `90`, `30m`, `1h30m`, `14d`; NaN when it is not one. */
function seconds(v) {
  if (/^\d+$/.test(v)) return Number(v);
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === '') return NaN;
  return (Number(m[1] || 0) * 24 + Number(m[2] || 0)) * 3600 + Number(m[3] || 0) * 60 + Number(m[4] || 0);
}

/**
 * A time as the API takes it (`docs/api.md`): RFC 3339 with a zone, a relative time
 * (`-5m`), `@snapshot` (among `snaps`) or a commit ts. Returns `{ms, expr}` — `expr` is
 * what is sent: the snapshot or commit ts as written (exact), a relative time as the
 * absolute time it names now — or `{error}` saying what to write.
 */
function parseTime(v, snaps) {
  v = v.trim();
  const rfc = /^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?/;
  if (rfc.test(v)) {
    if (!/([Zz]|[+-]\d\d:?\d\d)$/.test(v)) return { error: `${v} has no time zone: add Z (UTC) or an offset such as +01:00` };
    const t = Date.parse(v.replace(' ', 'T'));
    return isNaN(t) ? { error: `${v} is not a valid time` } : { ms: t, expr: v };
  }
  if (v.startsWith('-')) {
    const secs = seconds(v.slice(1));
    if (isNaN(secs)) return { error: `${v} is not a relative time: write it as -5m, -1h30m or -2d` };
    const t = Date.now() - secs * 1000;
    return { ms: t, expr: new Date(t).toISOString() };
  }
  if (v.startsWith('@')) {
    const sn = (snaps || []).find((x) => x.name === v.slice(1));
    return sn ? { ms: ms(sn.time), expr: v } : { error: `no snapshot named ${v.slice(1)}` };
  }
  if (/^\d{16,20}$/.test(v)) return { ms: Number(BigInt(v) >> 16n), expr: v };
  return { error: `“${v}” is not a time: write 2026-11-26T03:31:57Z, -5m, @snapshot or a commit ts` };
}
/** A chosen point for a dialog: its time, and the exact expression when it says more. */
function at(t, to) {
  return to === new Date(Math.floor(t / 1000) * 1000).toISOString() ? when(t) : `${when(t)} (${to})`;
}
/** A problem string: `…` spans become code. */
function problemText(p) {
  return raw(escapeText(p).replace(/`([^`]+)`/g, '<code>$1</code>'));
}
const ROLES = ['read', 'write', 'operator', 'admin'];
const can = (role) => state.me && ROLES.indexOf(state.me.role) >= ROLES.indexOf(role);
const tenantHref = (name) => '#/tenant/' + encodeURIComponent(name);

// ---- the API ------------------------------------------------------------------

const TOKEN_KEY = 'tenet.token';
const state = { me: null, timer: null, view: null };

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'UNAVAILABLE', 'the server did not answer (' + e.message + ')');
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, data?.code || 'HTTP_' + r.status, data?.message || text || r.statusText);
    if (r.status === 401 && path !== '/v1/whoami') logout('Your token is no longer accepted: ' + err.message);
    throw err;
  }
  return data;
}
const get = (path) => api('GET', path);
/** The answer, or the error itself (for parts of a page that may fail alone). */
const settle = (p) => p.then((v) => v, (e) => e);

// ---- notices, dialogs ---------------------------------------------------------

/** Says something in the one live region (empty: nothing shown). */
function notice(msg, bad = false) {
  const n = $('#notice');
  n.className = 'notice' + (bad ? ' bad' : '');
  n.innerHTML = piece(bad ? h`<span class="sr-only">Error: </span>${msg}` : msg);
}
function clearNotice() { $('#notice').replaceChildren(); }
const errorText = (e) => h`${e.message} (${e.code})`;

/**
 * Asks for confirmation, with form fields, and runs `action(values)` on confirm.
 * `consequence(values)` states what will happen; it is shown and updated as fields
 * change. A failing action leaves the dialog open with the error.
 */
let asked = 0;
function ask({ title, fields = [], consequence, confirm, danger = false, action }) {
  const dlg = $('#dialog');
  const seq = ++asked;
  const opener = document.activeElement;
  const openerId = opener && opener.id;
  dlg.onclose = () => {
    // Nothing of it stays in the page (another token may log in next).
    for (const id of ['#dialog-title', '#dialog-body', '#dialog-consequence', '#dialog-error']) $(id).replaceChildren();
    // Back to what opened it (or its successor, after a refresh rebuilt it).
    const o = (openerId && document.getElementById(openerId)) || (opener && opener.isConnected && opener);
    if (o) o.focus();
  };
  $('#dialog-title').textContent = title;
  $('#dialog-body').innerHTML = piece(fields.map((f) => field(f)));
  const ok = $('#dialog-ok');
  ok.textContent = confirm;
  ok.className = danger ? 'danger' : 'primary';
  ok.disabled = false;
  const err = $('#dialog-error');
  err.hidden = true;
  const values = () => {
    const v = {};
    for (const f of fields) {
      const el = $('#f-' + f.name);
      v[f.name] = f.type === 'checkbox' ? el.checked : el.value.trim();
    }
    return v;
  };
  const update = () => {
    err.hidden = true; // an answer to the last values, not to these
    $('#dialog-consequence').innerHTML = piece(consequence ? consequence(values()) : '');
  };
  update();
  const form = $('#dialog-form');
  form.oninput = update;
  form.onchange = update;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    ok.disabled = true;
    err.hidden = true;
    try {
      await action(values());
      if (seq === asked) dlg.close();
    } catch (e) {
      if (seq !== asked) return; // this dialog was closed and another opened
      err.hidden = false;
      err.innerHTML = piece(e instanceof ApiError ? errorText(e) : e.message);
      ok.disabled = false;
    }
  };
  $('#dialog-cancel').onclick = () => dlg.close();
  dlg.showModal();
  // A field first; without one, Cancel when confirming would destroy something.
  const first = $('input, select', $('#dialog-body'));
  (first || (danger ? $('#dialog-cancel') : ok)).focus();
}

function field(f) {
  const id = 'f-' + f.name;
  const help = f.help ? h`<p class="help" id="${id}-help">${f.help}</p>` : '';
  const described = f.help ? raw(` aria-describedby="${id}-help"`) : '';
  if (f.type === 'checkbox') {
    return h`<label class="inline"><input type="checkbox" id="${id}"${f.value ? raw(' checked') : ''}${described}> ${f.label}</label>${help}`;
  }
  if (f.type === 'select') {
    const opts = f.options.map(([v, l]) => h`<option value="${v}"${v === f.value ? raw(' selected') : ''}>${l}</option>`);
    return h`<label for="${id}">${f.label}</label><select id="${id}"${described}>${opts}</select>${help}`;
  }
  const req = f.required ? raw(' required') : '';
  return h`<label for="${id}">${f.label}</label><input id="${id}" type="${f.type || 'text'}" value="${f.value ?? ''}"${req}${described} autocomplete="off">${help}`;
}

/** Starts a job-making action, then says where to follow it. */
function started(what, job) {
  notice(h`${what} started: job ${job.id}. <a href="#/jobs">Follow it on Jobs</a>.`);
  refresh();
}

// ---- login --------------------------------------------------------------------

/** Forgets the token and everything shown with it; `why` is said (`bad`: as an error). */
function logout(why, bad = true) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.me = null;
  if ($('#dialog').open) $('#dialog').close();
  $('#who-text').textContent = '';
  route();
  if (why) notice(why, bad);
}

function showLogin() {
  $('#nav').hidden = true;
  $('#who').hidden = true;
  document.title = 'Tenet: log in';
  render(h`<div class="login">
    <h1 tabindex="-1">Log in</h1>
    <form id="login-form">
      <label for="token">API token</label>
      <input id="token" type="password" autocomplete="off" required aria-describedby="token-help">
      <p class="help" id="token-help">A token made with <code>tenet token create</code>, or the first admin
      token in <code>&lt;data-dir&gt;/admin.token</code>. It is kept in this browser tab only.</p>
      <p class="error" id="login-error" role="alert" hidden></p>
      <div class="buttons"><button class="primary" type="submit">Log in</button></div>
    </form></div>`);
  $('#login-form').onsubmit = async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
    try {
      await whoami();
      clearNotice();
      // A tenant token lands on the overview, not on a page of another tenant.
      const m = /^#\/tenant\/([^?]*)/.exec(location.hash);
      if (m && state.me.tenant !== null && decodeURIComponent(m[1]) !== state.me.tenant) {
        location.hash = '#/'; // hashchange routes
        return;
      }
      route();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      const el = $('#login-error');
      el.hidden = false;
      el.innerHTML = piece(errorText(e));
    }
  };
  $('#token').focus();
}

async function whoami() {
  state.me = await get('/v1/whoami');
  const me = state.me;
  const t = me.token;
  $('#who-text').textContent = (t ? 'token ' + t.id + (t.name ? ' “' + t.name + '”' : '') : 'local')
    + ' · ' + me.role + (me.tenant ? ' · tenant ' + me.tenant : ' · every tenant');
  $('#who').hidden = false;
  $('#nav').hidden = false;
}

// ---- routing and rendering ----------------------------------------------------

function render(markup, focus = true) {
  const main = $('#main');
  // A fresh element per view, so that no listener of the last view stays.
  main.innerHTML = '<div class="view">' + piece(markup) + '</div>';
  geometry(main);
  if (focus) ($('h1', main) || main).focus();
}

/** Positions what has data-l / data-w (percent of its track). */
function geometry(root) {
  for (const el of $$('[data-l]', root)) {
    el.style.left = el.dataset.l + '%';
    if (el.dataset.w !== undefined) el.style.width = el.dataset.w + '%';
  }
}

/** What `patch` last put into an element. */
const shown = new WeakMap();

/** Whether the user is typing or choosing in a field inside `el`. */
function busy(el) {
  const a = document.activeElement;
  return !!a && a !== el && el.contains(a) && a.matches('input, select, textarea');
}

/** Runs `replace` (which rebuilds `el`), keeping the focus on the element of the same id. */
function keepFocus(el, replace) {
  const a = document.activeElement;
  const id = a && el.contains(a) ? a.id : '';
  replace();
  if (id && document.getElementById(id)) document.getElementById(id).focus();
}

/** Replaces a part of the page unless the user is working in it, or it is unchanged. */
function patch(el, markup) {
  if (!el) return;
  const s = piece(markup);
  if (shown.get(el) === s || busy(el)) return;
  shown.set(el, s);
  keepFocus(el, () => { el.innerHTML = s; geometry(el); });
}

/** The server did not answer: what is shown is dimmed and dated until it does again. */
function stale(e, since) {
  $('.view').classList.add('stale');
  notice(h`The server did not answer (${e.message}); what is shown is from ${when(since)}. Trying again…`, true);
}
function fresh() {
  if ($('.view') && $('.view').classList.contains('stale')) {
    $('.view').classList.remove('stale');
    clearNotice();
  }
}

/** Whether `view` is still the one shown (a view's answers arriving later are dropped). */
const current = (view) => state.view === view;

/** Runs the view's `fn` again in `msEvery`, while the view is shown. */
function schedule(view, fn, msEvery) {
  if (!current(view)) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!current(view)) return;
    try { await fn(); } catch (_) { /* shown by the view */ }
  }, msEvery);
}
function refresh() { if (state.view) state.view.refresh(true); }

async function route() {
  clearTimeout(state.timer);
  state.view = null;
  if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin();
  if (!state.me) {
    try {
      await whoami();
    } catch (e) {
      if (e.status === 401) return logout(e.message);
      // The server is away (restarting?): keep the token, say so, try again.
      render(h`<h1 tabindex="-1">Tenet</h1><p class="error">${errorText(e)}</p>
        <p><button type="button" id="retry">Try again</button></p>`);
      $('#retry').onclick = route;
      return;
    }
  }
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean);
  for (const a of $$('[data-nav]')) a.removeAttribute('aria-current');
  let view;
  let tenant = null;
  try {
    tenant = parts[0] === 'tenant' && parts[1] ? decodeURIComponent(parts[1]) : null;
  } catch (_) {
    tenant = parts[1]; // not valid percent-encoding: asked for as written (not found)
  }
  if (tenant !== null) view = tenantView(tenant);
  else if (parts[0] === 'jobs') view = jobsView(new URLSearchParams(query || ''));
  else view = overviewView();
  const nav = $(`[data-nav="${view.nav}"]`);
  if (nav) nav.setAttribute('aria-current', 'page');
  state.view = view;
  await view.show();
}

// ---- overview -----------------------------------------------------------------

function health(t) {
  if (!t.restorable.length) return 'bad';
  return t.problems.length ? 'warn' : 'ok';
}

function overviewView() {
  let first = true;
  const view = {
    nav: 'overview',
    async show() {
      document.title = 'Tenet: overview';
      render(h`<h1 tabindex="-1">Overview</h1>
        <div class="toolbar"><span id="ov-summary" class="summary muted">Loading…</span>
        ${can('operator') ? h`<button type="button" id="ov-refresh">Read repositories now</button>` : ''}
        ${can('admin') ? h`<button type="button" id="ov-restore">Restore into a new tenant…</button>` : ''}</div>
        <div id="ov-table"></div>`);
      if ($('#ov-refresh')) {
        $('#ov-refresh').onclick = async () => {
          const b = $('#ov-refresh');
          b.disabled = true; // one read of every repository at a time
          try { await view.refresh('reread'); } finally { b.disabled = false; }
        };
      }
      if ($('#ov-restore')) $('#ov-restore').onclick = () => restoreNewDialog(null);
      await view.refresh();
    },
    async refresh(now = false) {
      try {
        // An action's refresh() reads the cached answer; only the button asks every
        // repository again.
        const reread = now === 'reread';
        const p = await get('/v1/protection' + (reread ? '?refresh=true' : ''));
        if (!current(view)) return;
        fresh();
        view.seenAt = Date.now();
        if (first) performance.mark('tenet:protection');
        // After the frame that shows them: what the first-paint figures measure.
        const painted = (name) => requestAnimationFrame(() => setTimeout(() => performance.mark(name)));
        drawOverview(p, first, first ? () => painted('tenet:overview-all') : null);
        if (first) {
          performance.mark('tenet:overview-dom');
          painted('tenet:overview');
          first = false;
        }
      } catch (e) {
        if (!current(view)) return;
        if (view.seenAt) stale(e, view.seenAt);
        else patch($('#ov-table'), h`<p class="error">${errorText(e)}</p>`);
        $('#ov-summary').textContent = 'Not read: ' + e.message;
      }
      schedule(view, () => view.refresh(), 10000);
    },
  };
  return view;
}

/** Rows put in at once; the rest follow in chunks, so the first screen paints early. */
const FIRST_ROWS = 60;
const ROW_CHUNK = 250;

function drawOverview(p, chunked, allShown) {
  const now = Date.now();
  const ts = p.tenants;
  const bad = ts.filter((t) => !t.restorable.length).length;
  const warn = ts.filter((t) => t.problems.length).length;
  // How old the figures are: the server answers from its last read of each repository.
  const read = ts.map((t) => t.read_time).filter(Boolean).sort()[0] || p.generated_at;
  $('#ov-summary').textContent = `${ts.length} tenant${ts.length === 1 ? '' : 's'} · ${bad} not restorable · `
    + `${warn} with problems · repositories read ${ago(read)}`;
  // One time axis for every bar: from the oldest restorable point (at most 30 days
  // back, at least 1 hour) to now.
  let start = now - 3600e3;
  for (const t of ts) for (const r of t.restorable) start = Math.min(start, ms(r.from_time));
  start = Math.max(start, now - 30 * 86400e3);
  const span = now - start;
  const pos = (t) => Math.max(0, Math.min(100, (t - start) / span * 100));
  const rows = ts.map((t) => {
    const segs = t.restorable.map((r) => {
      const l = pos(ms(r.from_time));
      return h`<span data-l="${Math.min(l, 99).toFixed(2)}" data-w="${Math.max(1, pos(ms(r.to_time)) - l).toFixed(2)}"></span>`;
    });
    const winLabel = t.restorable.length
      ? t.restorable.map((r) => `${when(r.from_time)} to ${when(r.to_time)}`).join('; ')
      : 'nothing restorable';
    const drill = t.last_drill_time
      ? h`<span class="badge ${t.last_drill_ok ? 'ok' : 'bad'}">${t.last_drill_ok ? 'passed' : 'failed'}</span> ${ago(t.last_drill_time)}`
      : h`<span class="muted">none</span>`;
    const cls = health(t);
    return h`<tr class="${cls}" data-tenant="${t.tenant}">
      <td><a id="ov-t-${t.tenant_id}" href="${tenantHref(t.tenant)}">${t.tenant}</a> <span class="badge">${t.state}</span></td>
      <td><div class="win" role="img" aria-label="Restorable: ${winLabel}" title="${winLabel}">${segs}</div></td>
      <td>${t.restorable_until_time ? when(t.restorable_until_time) : h`<span class="badge bad">not restorable</span>`}</td>
      <td class="num">${t.rpo_ms === null ? '—' : duration(t.rpo_ms / 1000)}</td>
      <td>${t.last_full ? ago(t.last_full.time) : h`<span class="muted">none</span>`}</td>
      <td>${t.last_incr ? ago(t.last_incr.time) : h`<span class="muted">none</span>`}</td>
      <td>${drill}</td>
      <td>${t.archive_running ? h`<span class="badge ok">running</span>` : h`<span class="badge">${t.archive || 'off'}</span>`}</td>
      <td>${t.problems.length ? h`<ul class="problems">${t.problems.map((x) => h`<li>${problemText(x)}</li>`)}</ul>` : h`<span class="badge ok">none</span>`}</td>
    </tr>`;
  });
  const table = (body) => h`<table class="overview" aria-describedby="ov-summary">
    <colgroup><col class="c-tenant"><col class="c-win"><col class="c-until"><col class="c-rpo"><col class="c-age">
    <col class="c-age"><col class="c-drill"><col class="c-arch"><col></colgroup>
    <thead><tr><th scope="col">Tenant</th><th scope="col">Restorable window
      <div class="axis" title="${when(start)} to now"><span>${duration((now - start) / 1000)} ago</span><span>now</span></div></th>
    <th scope="col">Restorable until</th>
    <th scope="col" class="num">RPO</th><th scope="col">Last full</th><th scope="col">Last incremental</th>
    <th scope="col">Last drill</th><th scope="col">Archive</th><th scope="col">Problems</th></tr></thead>
    <tbody>${body}</tbody></table>
    ${ts.length ? '' : h`<p class="muted">No tenants yet.</p>`}`;
  const el = $('#ov-table');
  const whole = piece(table(rows));
  if (shown.get(el) === whole || busy(el)) {
    if (allShown) allShown();
    return;
  }
  shown.set(el, whole);
  if (!chunked) {
    // Later refreshes in one pass: the page keeps its height, scroll and focus.
    keepFocus(el, () => { el.innerHTML = whole; geometry(el); });
    return;
  }
  el.innerHTML = piece(table(rows.slice(0, FIRST_ROWS)));
  geometry(el);
  const tbody = $('tbody', el);
  let next = FIRST_ROWS;
  const more = () => {
    if (shown.get(el) !== whole) return; // a newer answer replaced this one
    if (next >= rows.length) {
      if (allShown) allShown();
      return;
    }
    const t = document.createElement('template');
    t.innerHTML = piece(rows.slice(next, next + ROW_CHUNK));
    geometry(t.content);
    tbody.append(t.content);
    next += ROW_CHUNK;
    setTimeout(more);
  };
  setTimeout(more);
}

// ---- jobs ---------------------------------------------------------------------

const ACTIVE = ['queued', 'running', 'cancelling', 'failing'];
const isActive = (j) => ACTIVE.includes(j.state);
const interrupted = (j) => isActive(j) && !j.live;
/** Running in the server now (an interrupted job waits for a resume). */
const running = (j) => isActive(j) && j.live;

/** Percent done, or null while the job does not know its total yet. */
function percent(j) {
  if (j.state === 'succeeded') return 100;
  const p = j.progress;
  if (p.bytes_total > 0) return Math.min(100, Math.floor(p.bytes_done / p.bytes_total * 100));
  if (p.tasks_total > 0) return Math.min(100, Math.floor(p.tasks_done / p.tasks_total * 100));
  return isActive(j) ? null : 0;
}

function jobState(j) {
  const cls = j.state === 'succeeded' ? 'ok' : ['failed', 'cancelled'].includes(j.state) ? 'bad' : 'warn';
  return h`<span class="badge ${cls}">${interrupted(j) ? 'interrupted' : j.state}</span>`;
}

function progressCell(j) {
  const pct = percent(j);
  const p = j.progress;
  const rate = p.bytes_per_sec ? bytes(p.bytes_per_sec) + '/s' : '';
  const eta = !isActive(j) ? ''
    : p.eta_secs !== null && p.eta_secs !== undefined ? 'ETA ' + duration(p.eta_secs)
      : pct === null ? 'ETA once the size is known' : 'ETA once the rate is known';
  const done = pct === null && p.bytes_done ? bytes(p.bytes_done) + ' done' : '';
  // Without a known total the bar is indeterminate (no value), not a false 0 %.
  return h`<progress class="job-progress" data-job="${j.id}" max="100"${pct === null ? '' : h` value="${pct}"`}
      aria-label="Job ${j.id} progress">${pct === null ? '' : pct + ' %'}</progress>
    <span class="pct" data-job="${j.id}">${pct === null ? 'sizing' : pct + '\u00a0%'}</span>
    <span class="muted">${[j.phase, done, rate, eta].filter(Boolean).join(' · ')}</span>`;
}

/** A job's result or error, as words (no JSON). */
function outcome(j) {
  if (j.error) return h`<span class="error">${j.error.message}</span>`;
  if (!j.result) return '';
  const r = j.result;
  const short = [];
  if (r.backup_id) short.push('backup ' + r.backup_id);
  if (r.rows !== undefined) short.push(r.rows + ' rows');
  if (r.logical_bytes !== undefined) short.push(bytes(r.logical_bytes));
  const into = j.params?.target;
  if (into && !j.kind.startsWith('backup')) short.push('into ' + into);
  if (r.target_time || r.restored_time) short.push('at ' + when(r.target_time || r.restored_time));
  const items = Object.entries(r).filter(([, v]) => v !== null && typeof v !== 'object')
    .map(([k, v]) => h`<dt>${human(k)}</dt><dd>${/_time$|_at$/.test(k) ? when(v) : v}</dd>`);
  return h`${short.join(', ')}<details data-details="${j.id}"${openDetails.has(String(j.id)) ? raw(' open') : ''}>
    <summary id="job-details-${j.id}">details</summary><dl class="kv">${items}</dl></details>`;
}

/**
 * Whether the caller may cancel or resume `j`: an operator, and an admin for a job
 * that builds another tenant than a tenant token's own (a restore or clone of it).
 */
function mayControl(j) {
  const me = state.me;
  if (!can('operator')) return false;
  if (me.tenant_id === null || can('admin')) return true;
  const p = j.params || {};
  if (p.target_id !== undefined) return Number(p.target_id) === me.tenant_id;
  return p.target === undefined || p.target === me.tenant;
}

/** Job details the user opened, kept open across refreshes. */
const openDetails = new Set();

function jobRow(j, withTenant = true) {
  const actions = [];
  if (isActive(j) && j.state !== 'cancelling' && mayControl(j)) {
    actions.push(h`<button type="button" id="job-cancel-${j.id}" data-cancel="${j.id}">Cancel</button>`);
  }
  if (interrupted(j) && mayControl(j)) actions.push(h`<button type="button" id="job-resume-${j.id}" data-resume="${j.id}">Resume</button>`);
  const took = j.started_at ? ((ms(j.finished_at) || Date.now()) - ms(j.started_at)) / 1000 : null;
  return h`<tr data-job-row="${j.id}">
    <td class="num">${j.id}</td><td>${human(j.kind)}</td>
    ${withTenant ? h`<td><a id="job-tenant-${j.id}" href="${tenantHref(j.tenant)}">${j.tenant}</a>${
      j.params?.target && j.params.target !== j.tenant ? h` → ${j.params.target}` : ''}</td>` : ''}
    <td>${jobState(j)}</td><td>${progressCell(j)}</td>
    <td>${when(j.created_at)}</td><td class="num">${took === null ? '—' : duration(took)}</td>
    <td>${outcome(j)}</td><td>${actions}</td></tr>`;
}

function jobTable(jobs, withTenant = true) {
  if (!jobs.length) return h`<p class="muted">No jobs.</p>`;
  return h`<table><thead><tr><th scope="col" class="num">Job</th><th scope="col">Kind</th>
    ${withTenant ? h`<th scope="col">Tenant</th>` : ''}<th scope="col">State</th><th scope="col">Progress</th>
    <th scope="col">Created</th><th scope="col" class="num">Took</th><th scope="col">Outcome</th><th scope="col"></th></tr></thead>
    <tbody>${jobs.map((j) => jobRow(j, withTenant))}</tbody></table>`;
}

/** Cancel and resume buttons anywhere in `root` (delegated once per view). */
function jobButtons(root, jobsById) {
  // `toggle` does not bubble: caught on the way down.
  root.addEventListener('toggle', (ev) => {
    const d = ev.target.dataset && ev.target.dataset.details;
    if (d) ev.target.open ? openDetails.add(d) : openDetails.delete(d);
  }, true);
  root.addEventListener('click', (ev) => {
    const c = ev.target.closest('[data-cancel]');
    const r = ev.target.closest('[data-resume]');
    if (c) {
      const j = jobsById()[c.dataset.cancel];
      ask({
        title: `Cancel job ${c.dataset.cancel}`,
        consequence: () => cancelConsequence(j),
        confirm: 'Stop the job',
        danger: true,
        action: async () => {
          await api('POST', `/v1/jobs/${c.dataset.cancel}/cancel`);
          notice(`Job ${c.dataset.cancel} is being cancelled.`);
          refresh();
        },
      });
    } else if (r) {
      api('POST', `/v1/jobs/${r.dataset.resume}/resume`).then(
        () => { notice(`Job ${r.dataset.resume} resumed.`); refresh(); },
        (e) => notice(errorText(e), true));
    }
  });
}

function cancelConsequence(j) {
  if (!j) return 'The job stops and what it wrote so far is cleaned up.';
  if (j.kind.startsWith('backup')) return 'The backup stops; the files it uploaded are deleted and no backup is recorded.';
  if (j.kind.startsWith('restore') || j.kind === 'clone') {
    return `The restore stops; the tenant it was building${j.params?.target ? ' (' + j.params.target + ')' : ''} is dropped.`;
  }
  return `The ${human(j.kind)} job stops and cleans up what it started.`;
}

function jobsView(query) {
  let jobs = [];
  const byId = () => Object.fromEntries(jobs.map((j) => [j.id, j]));
  const view = {
    nav: 'jobs',
    async show() {
      document.title = 'Tenet: jobs';
      render(h`<h1 tabindex="-1">Jobs</h1>
        <h2>Running</h2><div id="jobs-running"></div>
        <h2>History</h2>
        <form class="filters" id="jobs-filter" aria-label="Filter jobs">
          <label>Tenant <input id="flt-tenant" value="${query.get('tenant') || ''}" autocomplete="off"></label>
          <label>Kind <select id="flt-kind"><option value="">any</option></select></label>
          <label>State <select id="flt-state"><option value="">any</option>
            ${['succeeded', 'failed', 'cancelled', 'interrupted'].map((s) => h`<option${s === query.get('state') ? raw(' selected') : ''}>${s}</option>`)}</select></label>
        </form>
        <div id="jobs-history"></div>`);
      $('#jobs-filter').oninput = () => draw();
      $('#jobs-filter').onsubmit = (ev) => ev.preventDefault();
      jobButtons($('.view'), byId);
      await view.refresh();
    },
    async refresh() {
      try {
        const got = await get('/v1/jobs');
        if (!current(view)) return;
        fresh();
        view.seenAt = Date.now();
        jobs = got.sort((a, b) => b.id - a.id);
        draw();
      } catch (e) {
        if (!current(view)) return;
        if (view.seenAt) stale(e, view.seenAt);
        else patch($('#jobs-running'), h`<p class="error">${errorText(e)}</p>`);
      }
      schedule(view, () => view.refresh(), jobs.some(running) ? 1000 : 5000);
    },
  };
  function draw() {
    const kinds = [...new Set(jobs.map((j) => j.kind))].sort();
    const ks = $('#flt-kind');
    const chosen = ks.dataset.kinds === undefined ? query.get('kind') || '' : ks.value;
    if (ks.dataset.kinds !== kinds.join()) {
      ks.dataset.kinds = kinds.join();
      ks.innerHTML = piece(h`<option value="">any</option>${kinds.map((k) => h`<option value="${k}"${k === chosen ? raw(' selected') : ''}>${human(k)}</option>`)}`);
    }
    const tenant = $('#flt-tenant').value.trim().toLowerCase();
    const st = $('#flt-state').value;
    const now = jobs.filter(running);
    const past = jobs.filter((j) => !running(j))
      .filter((j) => !tenant || [j.tenant, j.params?.target || ''].some((n) => n.toLowerCase().includes(tenant)))
      .filter((j) => !ks.value || j.kind === ks.value)
      .filter((j) => !st || (st === 'interrupted' ? interrupted(j) : j.state === st));
    patch($('#jobs-running'), now.length ? jobTable(now) : h`<p class="muted">Nothing is running.</p>`);
    patch($('#jobs-history'), jobTable(past.slice(0, 200)));
  }
  return view;
}

// ---- tenant -------------------------------------------------------------------

function tenantView(name) {
  const enc = encodeURIComponent(name);
  const d = { jobs: [] };
  let point = null; // the chosen time (ms) on the timeline
  let pointExpr = null; // what was typed for it (sent as is), null: the time of `point`
  let pointError = null; // what is wrong with what was typed
  const target = () => pointExpr || new Date(point).toISOString();
  let slowAt = 0; // when the slow parts (repository reads) were last asked for
  let active = ''; // the tenant's running jobs at the last refresh
  const view = {
    nav: 'tenant',
    async show() {
      document.title = 'Tenet: ' + name;
      render(h`<h1 tabindex="-1">${name} <span id="t-state"></span></h1>
        <div id="t-actions" class="toolbar"></div>
        <div id="t-cards" class="cards"></div>
        <h2 id="tl-h">Restore points</h2><div id="t-timeline" class="timeline" role="group" aria-labelledby="tl-h"></div>
        <div id="t-point"></div>
        <h2>Backups</h2><div id="t-backups"></div>
        <h2>Snapshots</h2><div id="t-snapshots"></div>
        <h2>Strategy</h2><div id="t-strategy"></div>
        <h2>Recent jobs</h2><div id="t-jobs"></div>`);
      jobButtons($('.view'), () => Object.fromEntries(d.jobs.map((j) => [j.id, j])));
      await view.refresh();
    },
    /**
     * Every poll reads the tenant, its archive and the jobs; what reads the repository
     * (restore points, backups, standby) and the rest only every 10 s, after an action
     * (`all`), and when one of the tenant's jobs ends.
     */
    async refresh(all = false) {
      const slow = all || !d.tenant || Date.now() - slowAt >= 10000;
      const [tenant, archive, jobs] = await Promise.all([
        settle(get(`/v1/tenants/${enc}`)),
        settle(get(`/v1/tenants/${enc}/archive`)),
        settle(get('/v1/jobs')),
      ]);
      if (!current(view)) return;
      const mine = jobs instanceof Error ? d.jobs
        : jobs.filter((j) => j.tenant === name || j.params?.target === name).sort((a, b) => b.id - a.id).slice(0, 10);
      const nowActive = mine.filter(running).map((j) => j.id).join();
      let again = true;
      try {
        if (tenant instanceof Error) {
          if (tenant.status === 404) {
            // Gone (or never there, or not this token's): a page of its own, no polling.
            again = false;
            render(h`<h1 tabindex="-1">${name}</h1><p class="error">${errorText(tenant)}</p>
              <p><a href="#/">Back to the overview</a></p>`, false);
          } else if (d.tenant) {
            stale(tenant, d.seenAt);
          } else {
            patch($('#t-actions'), h`<p class="error">${errorText(tenant)}</p>`);
          }
          return;
        }
        fresh();
        d.seenAt = Date.now();
        Object.assign(d, { tenant, archive, jobs: mine });
        if (slow || nowActive !== active) {
          slowAt = Date.now();
          const standby = tenant.state === 'standby';
          const [points, backups, snaps, strategy, sb] = await Promise.all([
            settle(get(`/v1/tenants/${enc}/restore-points`)),
            settle(get(`/v1/backups?tenant=${enc}`)),
            settle(get(`/v1/tenants/${enc}/snapshots`)),
            settle(get(`/v1/tenants/${enc}/strategy`)),
            standby ? settle(get(`/v1/tenants/${enc}/standby`)) : null,
          ]);
          if (!current(view)) return;
          Object.assign(d, { points, backups, snaps, strategy, standby: sb });
        }
        active = nowActive;
        draw();
      } finally {
        if (again) schedule(view, () => view.refresh(), nowActive ? 1000 : 5000);
      }
    },
  };

  const list = (v) => (Array.isArray(v) ? v : []);
  const isStandby = () => d.tenant.state === 'standby';
  const standbyInfo = () => (d.standby && !(d.standby instanceof Error) ? d.standby : null);

  function draw() {
    const t = d.tenant;
    patch($('#t-state'), h`<span class="badge">${t.state}</span>`);
    drawActions();
    drawCards();
    drawTimeline();
    drawBackups();
    drawSnapshots();
    drawStrategy();
    patch($('#t-jobs'), jobTable(d.jobs, false));
    drawPoint();
  }

  function drawActions() {
    const a = [];
    const act = (id, label) => h`<button type="button" id="act-${id}" data-act="${id}">${label}</button>`;
    const archiving = !(d.archive instanceof Error) && d.archive.running;
    if (can('operator')) {
      a.push(act('backup', 'Back up now…'));
      if (!isStandby()) a.push(archiving ? act('archive-stop', 'Stop archiving…') : act('archive-start', 'Start archiving…'));
      a.push(act('drill', 'Drill now…'));
    }
    if (can('write') && !isStandby()) a.push(act('snapshot', 'Take a snapshot…'));
    if (can('admin')) a.push(act('restore-new', 'Restore into a new tenant…'));
    if (can('operator') && isStandby()) a.push(act('promote', 'Promote…'));
    // The standby to switch to is another tenant: a tenant token cannot name it.
    if (can('operator') && state.me.tenant_id === null && !isStandby() && archiving) {
      a.push(act('switchover', 'Switch over…'));
    }
    patch($('#t-actions'), a);
    for (const b of $$('[data-act]', $('#t-actions'))) b.onclick = () => ACTIONS[b.dataset.act]();
  }

  function drawCards() {
    const card = (k, v) => h`<div class="card"><div class="k">${k}</div><div class="v">${v}</div></div>`;
    const pts = list(d.points);
    const last = pts.length ? pts[pts.length - 1].to_time : null;
    const arch = d.archive instanceof Error ? null : d.archive;
    const lastOf = (kind) => list(d.backups).filter((b) => b.kind === kind).map((b) => b.backup_time).sort().pop();
    const cards = [
      card('Restorable until', d.points instanceof Error ? h`<span class="error">${d.points.message}</span>`
        : last ? when(last) : h`<span class="badge bad">nothing restorable</span>`),
      card('RPO', arch && arch.rpo_ms !== null ? duration(arch.rpo_ms / 1000) : '—'),
      card('Archive', arch ? h`${arch.status}${arch.problem ? h`<br><span class="error">${arch.problem}</span>` : ''}` : 'off'),
      card('Last full backup', ago(lastOf('full'))),
      card('Last incremental', ago(lastOf('incr'))),
      card('Kept history', duration(d.tenant.history_retention_secs)),
    ];
    const s = standbyInfo();
    if (s) {
      cards.push(card('Standby of', h`${s.source} · applied ${when(s.applied_time)} · lag ${duration(s.lag_ms / 1000)}${s.problem ? h`<br><span class="error">${s.problem}</span>` : ''}`));
    }
    patch($('#t-cards'), cards);
  }

  /** The timeline's time axis: from the oldest thing shown to now. */
  function axis() {
    const now = Date.now();
    // The kept history (not before the tenant was made), widened to what is older.
    let start = Math.max(now - d.tenant.history_retention_secs * 1000, ms(d.tenant.created_time) - 1000);
    for (const r of list(d.points)) start = Math.min(start, ms(r.from_time));
    for (const b of list(d.backups)) start = Math.min(start, ms(b.backup_time));
    for (const s of list(d.snaps)) start = Math.min(start, ms(s.time));
    return { start, end: now, span: Math.max(1000, now - start) };
  }

  function drawTimeline() {
    const ax = axis();
    const pos = (t) => Math.max(0, Math.min(100, (t - ax.start) / ax.span * 100));
    const seg = (cls, from, to, label) => {
      const l = pos(from);
      return h`<span class="${cls}" data-l="${l.toFixed(3)}" data-w="${Math.max(0.3, pos(to) - l).toFixed(3)}" title="${label}"></span>`;
    };
    const mark = (cls, t, label) => h`<span class="mark ${cls}" data-l="${pos(t).toFixed(3)}" title="${label}"></span>`;
    const pts = list(d.points);
    const ranges = [];
    pts.forEach((r, i) => {
      ranges.push(seg('range', ms(r.from_time), ms(r.to_time), `restorable ${when(r.from_time)} to ${when(r.to_time)}`));
      if (i + 1 < pts.length) ranges.push(seg('gap', ms(r.to_time), ms(pts[i + 1].from_time), `gap: not restorable ${when(r.to_time)} to ${when(pts[i + 1].from_time)}`));
    });
    const fulls = list(d.backups).filter((b) => b.kind === 'full').map((b) => mark('full', ms(b.backup_time), `full backup ${b.id} at ${when(b.backup_time)}`));
    const incrs = list(d.backups).filter((b) => b.kind !== 'full').map((b) => mark('incr', ms(b.backup_time), `incremental ${b.id} at ${when(b.backup_time)}`));
    const snaps = list(d.snaps).map((s) => mark('snap', ms(s.time), `snapshot ${s.name} at ${when(s.time)}`));
    const arch = d.archive instanceof Error ? null : d.archive;
    const archSeg = arch && arch.restorable_until_time
      ? seg('archive', ms(arch.started_at), ms(arch.restorable_until_time), `log archived since ${when(arch.started_at)}, up to ${when(arch.restorable_until_time)}`) : '';
    const kept = seg('kept', Date.now() - d.tenant.history_retention_secs * 1000, Date.now(), 'kept history (revert, time travel)');
    const cursor = point === null ? '' : h`<span class="cursor" data-l="${pos(point).toFixed(3)}"></span>`;
    const lane = (label, inner) => h`<div class="lane"><div class="name">${label}</div><div class="track" data-track>${inner}${cursor}</div></div>`;
    const summary = pts.length
      ? `Restorable from backups and the archived log: ${pts.map((r) => `${when(r.from_time)} to ${when(r.to_time)}`).join('; ')}.`
        + (pts.length > 1 ? ` ${pts.length - 1} gap${pts.length > 2 ? 's' : ''} in between.` : '')
      : (d.points instanceof Error ? d.points.message : 'Nothing is restorable from backups.');
    patch($('#t-timeline'), h`<p id="tl-summary" class="help">${summary}</p>
      ${lane('Restorable', ranges)}${lane('Archived log', archSeg)}${lane('Full backups', fulls)}
      ${lane('Incrementals', incrs)}${lane('Snapshots', snaps)}${lane('Kept history', kept)}
      <div class="lane"><div></div><div class="axis"><span>${when(ax.start)}</span><span>${when(ax.start + ax.span / 2)}</span><span>now</span></div></div>
      <div class="legend"><span><i class="range"></i>restorable</span><span><i class="gap"></i>gap</span>
      <span><i class="archive"></i>archived log</span><span><i class="full"></i>full backup</span>
      <span><i class="incr"></i>incremental</span><span><i class="snap"></i>snapshot</span>
      <span><i class="kept"></i>kept history</span></div>`);
    for (const tr of $$('[data-track]', $('#t-timeline'))) {
      tr.onclick = (ev) => {
        const r = tr.getBoundingClientRect();
        choose(ax.start + (ev.clientX - r.left) / r.width * ax.span);
      };
    }
  }

  /** Sets the chosen point (ms) from a click, to the second (`text`: also into the time field). */
  function choose(t, text = true) {
    point = Math.min(Math.floor(t / 1000) * 1000, Date.now());
    pointExpr = null;
    pointError = null;
    updatePoint(text);
    shown.delete($('#t-timeline'));
    drawTimeline();
  }

  /** The point-in-time controls: built once, then updated in place (focus and clicks stay). */
  function drawPoint() {
    const el = $('#t-point');
    const kind = `${state.me.role}|${isStandby()}`; // what decides the buttons
    if (el.dataset.kind !== kind) {
      el.dataset.kind = kind;
      el.innerHTML = piece(h`<div class="point">
        <label for="pt-range">Point in time</label>
        <input type="range" id="pt-range" step="1">
        <label for="pt-time">Chosen time</label>
        <div class="toolbar"><input id="pt-time" size="28" aria-describedby="pt-help pt-status">
          <span id="pt-status"></span></div>
        <div></div><p class="help" id="pt-help">Click a lane, drag the slider, use the arrow keys (a second each), or type an RFC 3339 time.</p>
        <div></div><div class="toolbar">
          ${can('operator') && !isStandby() ? h`<button type="button" id="pt-revert">Revert to this point…</button>
            <button type="button" id="pt-inplace">Restore in place to this point…</button>` : ''}
          ${can('admin') ? h`<button type="button" id="pt-new">Restore into a new tenant…</button>` : ''}</div></div>`);
      const range = $('#pt-range');
      range.oninput = () => { point = Number(range.value) * 1000; pointExpr = null; pointError = null; updatePoint(false); };
      range.onchange = () => { shown.delete($('#t-timeline')); drawTimeline(); };
      $('#pt-time').onchange = () => {
        const v = $('#pt-time').value.trim();
        if (!v) return;
        const r = parseTime(v, list(d.snaps));
        if (r.error) {
          pointError = r.error;
          updatePoint(false);
          return;
        }
        pointError = null;
        point = r.ms; // exactly what was typed, not rounded
        pointExpr = r.expr;
        updatePoint(false);
        shown.delete($('#t-timeline'));
        drawTimeline();
      };
      if ($('#pt-revert')) $('#pt-revert').onclick = () => revertDialog(point, target());
      if ($('#pt-inplace')) $('#pt-inplace').onclick = () => inPlaceDialog(point, target());
      if ($('#pt-new')) $('#pt-new').onclick = () => restoreNewDialog(name, { to: target() });
    }
    updatePoint(true);
  }

  /** Puts the chosen point into the controls (`text`: also into the time field). */
  function updatePoint(text) {
    const ax = axis();
    if (point === null) {
      const pts = list(d.points);
      point = pts.length ? ms(pts[pts.length - 1].to_time) : Date.now();
    }
    const range = $('#pt-range');
    range.min = Math.floor(ax.start / 1000);
    range.max = Math.ceil(ax.end / 1000);
    if (document.activeElement !== range) range.value = Math.round(point / 1000);
    range.setAttribute('aria-valuetext', when(point));
    const field = $('#pt-time');
    if (!pointError && (!text || document.activeElement !== field)) field.value = pointExpr || new Date(point).toISOString();
    field.setAttribute('aria-invalid', pointError ? 'true' : 'false');
    const now = Date.now();
    const inRange = list(d.points).some((r) => point >= ms(r.from_time) && point <= ms(r.to_time));
    const kept = Math.max(now - d.tenant.history_retention_secs * 1000, ms(d.tenant.created_time));
    const inHistory = point >= kept && point <= now;
    const st = $('#pt-status');
    st.className = pointError || !inRange ? 'error' : 'muted';
    st.textContent = pointError || ((inRange ? 'restorable from backups' : 'not covered by backups') + ' · '
      + (point > now ? 'in the future'
        : point < ms(d.tenant.created_time) ? 'before the tenant was created'
          : inHistory ? 'within the kept history' : 'older than the kept history'));
    if ($('#pt-revert')) $('#pt-revert').disabled = !!pointError || !inHistory;
    if ($('#pt-inplace')) $('#pt-inplace').disabled = !!pointError || !inRange;
    if ($('#pt-new')) $('#pt-new').disabled = !!pointError || !inRange;
  }

  function drawBackups() {
    if (d.backups instanceof Error) return patch($('#t-backups'), h`<p class="error">${errorText(d.backups)}</p>`);
    const rows = [...d.backups].reverse().map((b) => h`<tr>
      <td><code>${b.id}</code></td><td>${b.kind}</td><td>${when(b.backup_time)}</td>
      <td class="num">${b.rows}</td><td class="num">${bytes(b.logical_bytes)}</td><td class="num">${bytes(b.stored_bytes)}</td>
      <td>${can('operator') ? h`<button type="button" id="verify-${b.id}" data-verify="${b.id}" aria-label="Verify ${b.id}">Verify</button>` : ''}
        ${can('admin') ? h`<button type="button" id="restore-${b.id}" data-restore-backup="${b.id}" aria-label="Restore ${b.id} into a new tenant">Restore…</button>` : ''}</td></tr>`);
    patch($('#t-backups'), d.backups.length ? h`<table><thead><tr><th scope="col">Backup</th><th scope="col">Kind</th>
      <th scope="col">Taken at</th><th scope="col" class="num">Rows</th><th scope="col" class="num">Size</th>
      <th scope="col" class="num">Stored</th><th scope="col"></th></tr></thead><tbody>${rows}</tbody></table>`
      : h`<p class="muted">No backups.</p>`);
    for (const b of $$('[data-verify]', $('#t-backups'))) {
      b.onclick = () => ask({
        title: 'Verify ' + b.dataset.verify,
        consequence: () => 'Reads every file of the backup from its repository and checks counts and digests. Nothing is changed.',
        confirm: 'Verify',
        action: async () => started('Verification', await api('POST', `/v1/backups/${encodeURIComponent(b.dataset.verify)}/verify`, {})),
      });
    }
    for (const b of $$('[data-restore-backup]', $('#t-backups'))) {
      b.onclick = () => restoreNewDialog(name, { backup_id: b.dataset.restoreBackup });
    }
  }

  function drawSnapshots() {
    if (d.snaps instanceof Error) return patch($('#t-snapshots'), h`<p class="error">${errorText(d.snaps)}</p>`);
    const rows = d.snaps.map((s) => h`<tr><td>${s.name}</td><td>${when(s.time)}</td>
      <td>${can('operator') && !isStandby() ? h`<button type="button" id="rollback-${s.name}" data-rollback="${s.name}" aria-label="Roll back to ${s.name}">Roll back…</button>` : ''}
      ${can('write') ? h`<button type="button" id="drop-snap-${s.name}" data-drop-snap="${s.name}" aria-label="Drop snapshot ${s.name}">Drop…</button>` : ''}</td></tr>`);
    patch($('#t-snapshots'), d.snaps.length ? h`<table><thead><tr><th scope="col">Snapshot</th><th scope="col">Taken at</th>
      <th scope="col"></th></tr></thead><tbody>${rows}</tbody></table>` : h`<p class="muted">No snapshots.</p>`);
    for (const b of $$('[data-rollback]', $('#t-snapshots'))) {
      const s = d.snaps.find((x) => x.name === b.dataset.rollback);
      b.onclick = () => ask({
        title: `Roll ${name} back to snapshot ${s.name}`,
        consequence: () => `${name} is put back as it was at ${when(s.time)}, in one commit: every change made since is undone `
          + '(tables and rows). Snapshots stay; the rollback itself can be undone with a revert of its commit.',
        confirm: 'Roll back', danger: true,
        action: async () => revertDone(await api('POST', `/v1/tenants/${enc}/snapshots/${encodeURIComponent(s.name)}/rollback`)),
      });
    }
    for (const b of $$('[data-drop-snap]', $('#t-snapshots'))) {
      b.onclick = () => ask({
        title: `Drop snapshot ${b.dataset.dropSnap}`,
        consequence: () => 'The snapshot’s name goes away, and GC may then reclaim the versions it kept. The tenant’s data is not changed.',
        confirm: 'Drop snapshot', danger: true,
        action: async () => { await api('DELETE', `/v1/tenants/${enc}/snapshots/${encodeURIComponent(b.dataset.dropSnap)}`); notice('Snapshot dropped.'); refresh(); },
      });
    }
  }

  function drawStrategy() {
    const s = d.strategy;
    if (s instanceof Error) {
      patch($('#t-strategy'), h`<p class="muted">${s.code === 'STRATEGY_NOT_FOUND' ? 'No strategy: nothing backs this tenant up on a schedule.' : s.message}</p>
        ${can('operator') ? h`<button type="button" id="st-edit">Set a strategy…</button>` : ''}`);
    } else {
      const b = s; // the strategy's fields, beside inherited, repo_url and runs
      const runs = s.runs.map((r) => h`<tr><td>${r.kind}</td><td>${when(r.next_due_time)}</td><td>${when(r.last_success_time)}</td>
        <td>${r.last_outcome || '—'}</td><td>${r.problem ? h`<span class="error">${r.problem}</span>` : ''}</td></tr>`);
      patch($('#t-strategy'), h`<dl class="kv">
        <dt>Source</dt><dd>${s.inherited ? 'the default strategy' : 'this tenant’s own'}</dd>
        <dt>Full backups</dt><dd>${b.full ? h`<code>${b.full}</code> (cron, UTC)` : 'none'}</dd>
        <dt>Incrementals</dt><dd>${b.incr_secs ? 'every ' + duration(b.incr_secs) : 'none'}</dd>
        <dt>Archive</dt><dd>${b.archive ? 'on' + (b.archive_interval_ms ? ', every ' + b.archive_interval_ms + ' ms' : '') : 'off'}</dd>
        <dt>Repository</dt><dd>${b.repo || 'the default'} (${s.repo_url})</dd>
        <dt>Retention</dt><dd>${b.keep_within_secs ? 'restorable within ' + duration(b.keep_within_secs) : 'none'}${b.keep_full ? ', at least ' + b.keep_full + ' fulls' : ''}</dd>
        <dt>Drills</dt><dd>${b.drill ? h`<code>${b.drill}</code>` : 'none'}</dd></dl>
        ${runs.length ? h`<table><thead><tr><th scope="col">Run</th><th scope="col">Next due</th><th scope="col">Last success</th>
          <th scope="col">Last outcome</th><th scope="col">Problem</th></tr></thead><tbody>${runs}</tbody></table>` : ''}
        ${can('operator') ? h`<button type="button" id="st-edit">Edit strategy…</button>` : ''}`);
    }
    if ($('#st-edit')) $('#st-edit').onclick = strategyDialog;
  }

  function strategyDialog() {
    const none = d.strategy instanceof Error;
    const b = none ? {} : d.strategy;
    ask({
      title: `Strategy of ${name}`,
      fields: [
        { name: 'full', label: 'Full backups (cron, UTC)', value: none ? '0 2 * * *' : b.full || '', help: 'e.g. “0 2 * * *”: every day at 02:00. Empty: none.' },
        { name: 'incr', label: 'Incremental every', value: b.incr_secs || '', help: 'Seconds, or a duration such as 30m, 1h, 1d. Empty: none.' },
        { name: 'archive', label: 'Archive the commit log continuously', type: 'checkbox', value: b.archive ?? true },
        { name: 'repo', label: 'Repository (name)', value: b.repo || '', help: 'Empty: the default repository.' },
        { name: 'keep', label: 'Keep restorable within', value: b.keep_within_secs || '', help: 'Seconds, or a duration such as 14d. Older backups are pruned once nothing restorable needs them. Empty: keep all.' },
        { name: 'keepFull', label: 'Keep at least this many fulls', value: b.keep_full || '' },
        { name: 'drill', label: 'Restore drills (cron, UTC)', value: b.drill || '', help: 'Empty: none.' },
      ],
      consequence: (v) => `The scheduler applies this strategy to ${name} from now on${!none && b.inherited ? ', instead of the default' : ''}.`
        + (v.keep ? ' Retention may delete backups older than what it keeps restorable.' : ''),
      confirm: 'Save strategy',
      action: async (v) => {
        const num = (x, what, dur = false) => {
          const n = dur ? seconds(x) : /^\d+$/.test(x) ? Number(x) : NaN;
          if (isNaN(n)) {
            throw new Error(dur ? `${what} must be a number of seconds or a duration such as 30m, 1h or 14d.` : `${what} must be a whole number.`);
          }
          return n;
        };
        // The strategy is replaced whole: what the form does not show is carried over.
        const body = { archive: v.archive };
        if (b.archive_interval_ms) body.archive_interval_ms = b.archive_interval_ms;
        if (v.full) body.full = v.full;
        if (v.incr) body.incr_secs = num(v.incr, 'The incremental interval', true);
        if (v.repo) body.repo = v.repo;
        if (v.keep) body.keep_within_secs = num(v.keep, 'Keep restorable within', true);
        if (v.keepFull) body.keep_full = num(v.keepFull, 'Keep fulls');
        if (v.drill) body.drill = v.drill;
        await api('PUT', `/v1/tenants/${enc}/strategy`, body);
        notice('Strategy saved.');
        refresh();
      },
    });
  }

  function revertDialog(t, to) {
    ask({
      title: `Revert ${name}`,
      fields: [{ name: 'table', label: 'Only this table (optional)', value: '', help: 'Empty: the whole tenant, its tables and catalog.' }],
      consequence: (v) => `${v.table ? 'Table ' + v.table + ' of ' : ''}${name} is put back as it was at ${at(t, to)}, in one commit from the kept history: `
        + 'every change made after that time is undone. Writes wait while it commits. The revert is logged and can itself be undone.',
      confirm: 'Revert', danger: true,
      action: async (v) => revertDone(await api('POST', `/v1/tenants/${enc}/revert`, v.table ? { to, table: v.table } : { to })),
    });
  }

  function revertDone(r) {
    const rows = r.tables.reduce((n, x) => n + x.rows_restored + x.rows_reverted + x.rows_removed, 0);
    notice(r.commit_ts === null
      ? `Nothing differed: ${name} already was as at ${when(r.target_time)}.`
      : `${name} is back at ${when(r.target_time)}: ${rows} row${rows === 1 ? '' : 's'} changed in ${r.tables.length} table${r.tables.length === 1 ? '' : 's'}, committed at ${when(r.commit_time)}.`
        + (r.undo ? ` To undo: ${r.undo}` : ''));
    refresh();
  }

  function inPlaceDialog(t, to) {
    ask({
      title: `Restore ${name} in place`,
      consequence: () => `${name} is restored from its backups and archived log as it was at ${at(t, to)}, then made equal to it in one commit: `
        + 'every change made after that time is undone. A snapshot is taken first, so the restore can be rolled back.',
      confirm: 'Restore in place', danger: true,
      action: async () => started('Restore in place', await api('POST', '/v1/restores', { source: name, in_place: true, to })),
    });
  }

  const ACTIONS = {
    backup: () => ask({
      title: `Back up ${name} now`,
      fields: [
        { name: 'kind', label: 'Kind', type: 'select', value: 'full', options: [['full', 'Full backup'], ['incr', 'Incremental (the log since the last backup)']] },
        { name: 'rate', label: 'Limit the rate (MiB/s, optional)', value: '', help: 'Empty: as fast as the server’s I/O budget allows.' },
      ],
      consequence: (v) => `${v.kind === 'full' ? 'A full' : 'An incremental'} backup of ${name} is written to `
        + `${d.archive instanceof Error || !d.archive.repo ? 'the default repository' : d.archive.repo} while ${name} keeps serving reads and writes.`,
      confirm: 'Start backup',
      action: async (v) => {
        const body = { tenant: name, kind: v.kind };
        if (v.rate) {
          const mib = Number(v.rate);
          if (!(mib >= 0.001)) throw new Error('The rate must be a number of MiB/s, at least 0.001 (1 KiB/s).');
          body.throttle_bytes_per_sec = Math.round(mib * 1048576);
        }
        started('Backup', await api('POST', '/v1/backups', body));
      },
    }),
    'archive-start': () => ask({
      title: `Archive ${name}’s commit log`,
      fields: [{ name: 'full', label: 'Take a full backup first when there is none', type: 'checkbox', value: true }],
      consequence: () => `Every commit of ${name} is shipped to its repository about once a second, so it can be restored to any point after its first full backup.`,
      confirm: 'Start archiving',
      action: async (v) => {
        const a = await api('POST', `/v1/tenants/${enc}/archive`, { full_backup: v.full });
        const job = a.backup_job ? h` Its first full backup is <a href="#/jobs">job ${a.backup_job}</a>.` : '';
        // Nothing restorable yet is expected while that first backup runs.
        const problem = a.problem && !a.backup_job;
        notice(problem ? h`Archiving started, but: ${a.problem}` : h`Archiving started.${job}`, problem);
        refresh();
      },
    }),
    'archive-stop': () => ask({
      title: `Stop archiving ${name}`,
      consequence: () => `Commits of ${name} after this moment are no longer shipped: it stays restorable only up to now (or its next backup).`
        + (!(d.strategy instanceof Error) && d.strategy && d.strategy.archive
          ? ` But ${d.strategy.inherited ? 'the default strategy' : 'its strategy'} archives ${name}: the scheduler starts the archive again within seconds. To stop for good, turn archiving off in the strategy.` : ''),
      confirm: 'Stop archiving', danger: true,
      action: async () => { await api('DELETE', `/v1/tenants/${enc}/archive`); notice('Archiving stopped.'); refresh(); },
    }),
    drill: () => ask({
      title: `Restore drill of ${name}`,
      consequence: () => 'A random point of the restorable window is restored into a hidden scratch tenant, compared with the tenant’s own history, and dropped. Nothing of the tenant is changed.',
      confirm: 'Start drill',
      action: async () => started('Drill', await api('POST', `/v1/tenants/${enc}/drill`, {})),
    }),
    snapshot: () => ask({
      title: `Snapshot of ${name}`,
      fields: [{ name: 'snap', label: 'Name', value: '', required: true }],
      consequence: (v) => `The current state of ${name} is named “${v.snap || '…'}”: it can be read and rolled back to while it exists (O(1); GC keeps its versions).`,
      confirm: 'Take snapshot',
      action: async (v) => { await api('POST', `/v1/tenants/${enc}/snapshots`, { name: v.snap }); notice(`Snapshot ${v.snap} taken.`); refresh(); },
    }),
    'restore-new': () => restoreNewDialog(name),
    promote: () => ask({
      title: `Promote standby ${name}`,
      fields: [{ name: 'force', label: 'The source is lost: promote even though it may still be alive', type: 'checkbox', value: false }],
      consequence: (v) => `${name} stops following ${standbyInfo() ? standbyInfo().source : 'its source'} and becomes writable at the last applied commit`
        + (standbyInfo() ? ` (${when(standbyInfo().applied_time)})` : '') + '; '
        + 'its archive continues in the same repository.' + (v.force ? ' Commits of the source after that point are lost to it.' : ''),
      confirm: 'Promote', danger: true,
      action: async (v) => {
        const r = await api('POST', `/v1/tenants/${enc}/promote`, { force: v.force });
        const said = [h`${r.tenant} is promoted at ${when(r.promoted_time)}.`];
        if (r.lost_commits) said.push(h` ${r.lost_commits} commit${r.lost_commits === 1 ? '' : 's'} of the source after that point are not in it.`);
        if (r.renamed_from) said.push(h` It took the name of ${r.renamed_from}.`);
        if (r.backup_job) said.push(h` Its first full backup is <a href="#/jobs">job ${r.backup_job}</a>.`);
        if (r.problem) said.push(h` But: ${r.problem}`);
        notice(said, !!r.problem);
        refresh();
      },
    }),
    switchover: () => ask({
      title: `Switch ${name} over to a standby`,
      fields: [{ name: 'to', label: 'Standby tenant', value: '', required: true }],
      consequence: (v) => `${name}’s writes pause while ${v.to || 'the standby'} catches up, then it becomes the primary and ${name} follows it. No commit is lost.`,
      confirm: 'Switch over', danger: true,
      action: async (v) => started('Switchover', await api('POST', `/v1/tenants/${enc}/switchover`, { to: v.to })),
    }),
  };

  return view;
}

/** Restore into a new tenant: from `source` (asked when null), at a time, a backup or the latest point. */
function restoreNewDialog(source, at = {}) {
  const fields = [];
  if (source === null) fields.push({ name: 'source', label: 'Source tenant', value: '', required: true });
  fields.push({ name: 'target', label: 'New tenant', value: source ? source + '-restored' : '', required: true });
  if (!at.backup_id) fields.push({ name: 'to', label: 'Point in time', value: at.to || '', help: 'RFC 3339, -5m, @snapshot or a commit ts. Empty: the latest restorable point.' });
  ask({
    title: 'Restore into a new tenant',
    fields,
    consequence: (v) => `A new tenant “${v.target || '…'}” is built from ${source || v.source || 'the source'}’s `
      + (at.backup_id ? `backup ${at.backup_id}` : v.to ? `backups and archived log as at ${v.to}` : 'latest restorable point')
      + `. ${source || v.source || 'The source'} is not changed.`,
    confirm: 'Start restore',
    action: async (v) => {
      const body = { source: source || v.source, target: v.target };
      if (at.backup_id) body.backup_id = at.backup_id;
      else if (v.to) body.to = v.to;
      else body.latest = true;
      started('Restore', await api('POST', '/v1/restores', body));
    },
  });
}

// ---- start --------------------------------------------------------------------

window.addEventListener('hashchange', () => {
  // `#main` and the like are places on the page (the skip link), not views.
  if (location.hash && !location.hash.startsWith('#/')) return;
  clearNotice();
  route();
});
document.addEventListener('DOMContentLoaded', () => {
  $('#logout').onclick = () => logout('Logged out.', false);
  $('.skip').onclick = (ev) => { ev.preventDefault(); $('#main').focus(); };
  route();
});
