/* accessrc-sim dashboard. Plain JS, no dependencies, no network but this simulator.
 * Data: the simulator's JSON API and a server-sent event stream read through fetch, on the session cookie that the
 * login URL (or the admin key pasted into the form) opened; the page never holds the key. Every call sends
 * X-Requested-With, which the server asks of a session's changes. DOM is built with textContent only. */
(() => {
  'use strict';

  const boot = JSON.parse(document.getElementById('boot').textContent);
  const R = boot.routes;
  const LOGIN_HINT = 'Open the login URL printed by accessrc-sim serve, or paste the admin key.';
  const PLATFORM_NAMES = {accessrc: 'AccessRC', accredit: 'Accredit', reachfive: 'ReachFive'};
  const state = {
    session: Boolean(boot.session),
    jobs: new Map(),        // id -> job summary
    openJob: null,          // id of the job in the detail panel
    subs: [],
    scenarioRun: null,
    keyWaiters: [],
  };

  // ---------------------------------------------------------------------------------------------
  // small helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else if (name === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmtTime(ts) {
    if (!ts) return '—';
    const d = new Date(ts * 1000);
    const today = new Date();
    const time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});
    return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
  }

  function shortId(id) { return id ? id.slice(0, 8) : '—'; }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function toast(message, kind = 'info', ms = 4000) {
    const box = el('div', {class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status'}, message);
    $('#toast').append(box);
    setTimeout(() => box.remove(), ms);
  }

  function notice(target, message, kind) {
    target.replaceChildren(el('p', {class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status'}, message));
  }

  async function copyText(text, what) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        const area = el('textarea', {class: 'offscreen'});
        area.value = text;
        document.body.append(area);
        area.select();
        document.execCommand('copy');
        area.remove();
      }
      toast(`${what} copied`, 'ok', 2000);
    } catch (e) {
      toast(`Could not copy ${what}: ${e}`, 'error');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // API access on the dashboard session
  class ApiError extends Error {
    constructor(status, body) {
      const err = body && (body.error || body);
      const message = (err && (err.message || err.detail)) || `HTTP ${status}`;
      super(message);
      this.status = status;
      this.field = err && err.field;
      this.body = body;
    }
  }

  function authHeaders() {
    return {'X-Requested-With': 'accessrc-sim'};
  }

  function setSession(open) {
    state.session = open;
    $('#key-button').hidden = open;  // "Log in" only while there is no session
  }

  function sessionEnded() {
    const message = state.session ? `The session ended (did the server restart?). ${LOGIN_HINT}` : (boot.login_error || '');
    setSession(false);
    return askForKey(message);
  }

  async function api(method, url, body) {
    for (;;) {
      const init = {method, headers: {...authHeaders(), Accept: 'application/json'}, cache: 'no-store'};
      if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      const res = await fetch(url, init);
      if (res.status === 401) {
        await sessionEnded();
        continue;
      }
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = {message: text}; }
      if (!res.ok) throw new ApiError(res.status, data);
      return data && data.status === 'success' && 'data' in data ? data.data : data;
    }
  }

  function askForKey(message) {
    const panel = $('#key-panel');
    panel.hidden = false;
    const err = $('#key-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('#key-input').focus();
    return new Promise((resolve) => state.keyWaiters.push(resolve));
  }

  function setupKey() {
    $('#key-button').addEventListener('click', () => {
      const panel = $('#key-panel');
      panel.hidden = !panel.hidden;
      if (!panel.hidden) $('#key-input').focus();
    });
    $('#key-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = $('#key-input').value.trim();
      if (!value) return;
      let res;
      try {
        res = await fetch(R.login, {method: 'POST', cache: 'no-store',
          headers: {...authHeaders(), 'Content-Type': 'application/json', Accept: 'application/json'},
          body: JSON.stringify({key: value})});
      } catch (e) {
        askForKey(`Could not reach the simulator: ${e}`);
        return;
      }
      $('#key-input').value = '';
      if (!res.ok) {
        askForKey(res.status === 401 ? 'The simulator refused that key.' : `Login failed: HTTP ${res.status}`);
        return;
      }
      setSession(true);
      $('#key-panel').hidden = true;
      const waiters = state.keyWaiters.splice(0);
      waiters.forEach((resolve) => resolve());
    });
    setSession(state.session);
    if (!state.session) askForKey(boot.login_error || '');
  }

  // ---------------------------------------------------------------------------------------------
  // status vocabulary: colour + icon + word
  function jobStatus(job) {
    if (job.expected_failure) return {cls: 'expected', icon: '⚑', word: 'Expected failure'};  // a scenario fault, refused
    if (job.state === 'succeeded') return {cls: 'succeeded', icon: '✔', word: 'Delivered'};
    if (job.state === 'exhausted') return {cls: 'exhausted', icon: '✖', word: job.platform === 'reachfive' ? 'Not delivered' : 'Failed'};
    if (job.state === 'delivering') return {cls: 'delivering', icon: '➤', word: 'Sending'};
    if ((job.attempts_made || 0) > 0) return {cls: 'retrying', icon: '↻', word: 'Retrying'};
    return {cls: 'queued', icon: '◷', word: 'Queued'};
  }

  function chip(status) {
    return el('span', {class: `status s-${status.cls}`, dataset: {status: status.cls}},
      el('span', {class: 'icon', 'aria-hidden': 'true'}, status.icon), status.word);
  }

  function httpCode(status, error) {
    if (status === null || status === undefined) {
      return el('span', {class: 'code-bad', title: error || ''}, error ? `✖ ${error}` : '—');
    }
    const ok = status >= 200 && status < 300;
    return el('span', {class: ok ? 'code-ok' : 'code-bad'}, `${ok ? '✔' : '✖'} ${status}`);
  }

  // ---------------------------------------------------------------------------------------------
  // delivery log
  function jobRank(job) {
    return [job.updated_at || 0, job.attempts_made || 0, {pending: 0, delivering: 1, succeeded: 2, exhausted: 2}[job.state] || 0];
  }

  function newer(a, b) {
    const ra = jobRank(a), rb = jobRank(b);
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i] > rb[i];
    return false;
  }

  function mergeJob(job) {
    const old = state.jobs.get(job.id);
    if (old && !newer(job, old)) return false;
    state.jobs.set(job.id, {...old, ...job});
    return true;
  }

  // the log's "Source" filter: a job's origin (api/jobs.py origin()) in the words of the page
  const ORIGIN_GROUPS = {api: 'api', action: 'api', sample: 'api', review: 'api', cli: 'cli', testing: 'cli',
    scenario: 'scenario', demo: 'demo', dashboard: 'dashboard', schedule: 'schedule', redeliver: 'redeliver'};
  function originOf(job) { return ORIGIN_GROUPS[job.origin || (job.source || '').split(':')[0]] || 'other'; }

  function filtered() {
    const st = $('#filter-state').value, pf = $('#filter-platform').value, src = $('#filter-source').value;
    return Array.from(state.jobs.values())
      .filter((j) => (!st || j.state === st) && (!pf || j.platform === pf) && (!src || originOf(j) === src))
      .sort((a, b) => (b.created_at - a.created_at) || (b.seq || 0) - (a.seq || 0));
  }

  // "N of M": M the job's most attempts (1 + retries); a scenario step sent as a later attempt (X-JobAttempt)
  // counts as that attempt of the platform's schedule, so N never exceeds M
  function attemptsText(job) {
    const made = job.attempts_made || 0;
    const most = job.max_attempts ? Math.max(job.max_attempts, made) : '?';
    return `${made} of ${most}`;
  }
  function attemptsTitle(job) {
    const made = job.attempts_made || 0;
    if (job.max_attempts && made > job.max_attempts) return `a scenario step sent this as attempt ${made} (X-JobAttempt ${made - 1})`;
    return job.max_attempts ? `${made} attempt(s) made of at most ${job.max_attempts} (1 + ${job.max_attempts - 1} retries)` : '';
  }

  function jobRow(job) {
    const status = jobStatus(job);
    const row = el('tr', {class: 'clickable', tabindex: '0', dataset: {job: job.id, state: job.state},
      'aria-label': `${status.word}: ${job.event} to ${job.url}, job ${shortId(job.id)}. Open the job.`},
      el('td', {'data-label': 'Status'}, chip(status)),
      el('td', {'data-label': 'Event'}, el('strong', {}, job.event)),
      el('td', {'data-label': 'Platform'}, PLATFORM_NAMES[job.platform] || job.platform),
      el('td', {'data-label': 'Target', class: 'wrap'}, job.url),
      el('td', {'data-label': 'Job', class: 'id', title: job.id}, shortId(job.id)),
      el('td', {'data-label': 'Attempts', class: 'attempts', title: attemptsTitle(job)}, attemptsText(job)),
      el('td', {'data-label': 'Last answer', class: 'last'}, (job.attempts_made || 0) ? httpCode(job.last_status, job.last_error) : '—'),
      el('td', {'data-label': 'Time'}, fmtTime(job.created_at)));
    const open = () => { location.hash = `#job/${job.id}`; };
    row.addEventListener('click', open);
    row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } });
    return row;
  }

  let renderQueued = false;
  function renderJobs(freshIds = new Set()) {
    if (renderQueued) { freshIds.forEach((id) => state.fresh.add(id)); return; }
    state.fresh = new Set(freshIds);
    renderQueued = true;
    queueMicrotask(() => {  // one render for all the events of a chunk
      renderQueued = false;
      const body = $('#jobs-body');
      const jobs = filtered().slice(0, 300);
      const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.job;
      if (!jobs.length) {
        body.replaceChildren(el('tr', {}, el('td', {colspan: 8, class: 'empty'},
          state.jobs.size ? 'No delivery matches these filters.' : 'No deliveries yet. Send an event from “Send an event”.')));
        return;
      }
      body.replaceChildren(...jobs.map((job) => {
        const row = jobRow(job);
        if (state.fresh.has(job.id)) row.classList.add('fresh');
        return row;
      }));
      if (focused) { const again = body.querySelector(`tr[data-job="${CSS.escape(focused)}"]`); if (again) again.focus(); }
    });
  }

  async function loadJobs() {
    const data = await api('GET', `${R.jobs}?limit=200`);
    const list = Array.isArray(data) ? data : (data.jobs || data.items || []);
    list.forEach(mergeJob);
    renderJobs();
  }

  // ---------------------------------------------------------------------------------------------
  // the live stream (server-sent events read through fetch, so a 401 shows the login form)
  function setLive(kind, text) {
    $('#live').dataset.state = kind;
    $('#live-text').textContent = text;
  }

  function handleEvent(type, data) {
    if (type === 'call') { callArrived(data.call || {}); return; }
    if (type === 'job' && data.source === 'review') loopChanged();  // a review answered: its row shows the job
    const job = type === 'job' ? data : type === 'attempt' ? data.job : null;
    if (!job) return;
    const fresh = !state.jobs.has(job.id);
    if (mergeJob(job)) {
      renderJobs(fresh ? new Set([job.id]) : new Set());
      if (state.openJob === job.id) refreshDetail();
    }
  }

  async function streamLoop() {
    let since = '';
    for (;;) {
      if (!state.session) { setLive('down', 'needs a login'); await askForKey(boot.login_error || ''); }
      try {
        const params = new URLSearchParams({max_seconds: '120'});
        if (since) params.set('since', since);
        const res = await fetch(`${R.stream}?${params}`, {headers: authHeaders(), cache: 'no-store'});
        if (res.status === 401) { setLive('down', 'needs a login'); await sessionEnded(); continue; }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        setLive('live', 'live');
        await loadJobs().catch(() => {});
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const chunk = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let type = 'message', data = '';
            for (const line of chunk.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
              else if (line.startsWith('id:')) since = line.slice(3).trim() || since;
            }
            if (data) { try { handleEvent(type, JSON.parse(data)); } catch (e) { console.error(e); } }
          }
        }
      } catch (e) {
        setLive('down', 'reconnecting…');
        await sleep(1000);
        continue;
      }
      // the server closes the stream now and then to free its thread; reconnect at once
    }
  }

  // ---------------------------------------------------------------------------------------------
  // job detail
  async function openDetail(id) {
    state.openJob = id;
    const panel = $('#detail');
    panel.hidden = false;
    $('#detail-title').textContent = 'Job ' + shortId(id);
    await refreshDetail(true);
    $('#detail-close').focus();
  }

  function closeDetail() {
    state.openJob = null;
    $('#detail').hidden = true;
    if (location.hash.startsWith('#job/')) history.replaceState(null, '', '#deliveries');
    const row = $(`tr[data-job="${CSS.escape(state.lastOpened || '')}"]`);
    if (row) row.focus();
  }

  let detailBusy = false, detailAgain = false;
  async function refreshDetail(first) {
    if (detailBusy) { detailAgain = true; return; }
    detailBusy = true;
    const id = state.openJob;
    try {
      const [job, calls] = await Promise.all([
        api('GET', R.job.replace('{id}', encodeURIComponent(id))),
        api('GET', `${R.calls}?${new URLSearchParams({job: id, limit: '200'})}`).catch((e) => e),
      ]);
      if (state.openJob !== id) return;
      state.lastOpened = id;
      renderDetail(job, calls);
    } catch (e) {
      if (first) $('#detail-body').replaceChildren(el('p', {class: 'notice error', role: 'alert'}, `Could not load the job: ${e.message}`));
    } finally {
      detailBusy = false;
      if (detailAgain) { detailAgain = false; refreshDetail(); }
    }
  }

  function headersTable(headers) {
    const rows = Object.entries(headers || {}).map(([name, value]) =>
      el('tr', {}, el('td', {}, name), el('td', {class: value === '***' ? 'masked' : ''},
        value === '***' ? '*** (masked)' : value)));
    return el('table', {class: 'headers'}, el('tbody', {}, rows));
  }

  function shellQuote(text) { return `'${String(text).replace(/'/g, `'\\''`)}'`; }

  function curlFor(job, attempt) {
    const headers = (attempt && attempt.request_headers) || {};
    const parts = ['curl -sS -X POST ' + shellQuote(job.url)];
    for (const [name, value] of Object.entries(headers)) parts.push(`  -H ${shellQuote(`${name}: ${value}`)}`);
    parts.push(`  --data-binary ${shellQuote(job.body)}`);
    let text = parts.join(' \\\n');
    if (Object.values(headers).includes('***')) text = '# credentials are masked (***): put the real value in before running\n' + text;
    return text;
  }

  function signatureHelp(job, attempt) {
    const headers = (attempt && attempt.request_headers) || {};
    const get = (name) => { const k = Object.keys(headers).find((h) => h.toLowerCase() === name); return k ? headers[k] : undefined; };
    const auth = job.auth || {};
    const kind = auth.kind || (job.platform === 'accredit' ? 'rsa' : get('x-signature') ? 'hmac' : 'none');
    const box = el('div', {});
    if (kind === 'rsa') {
      box.append(
        el('p', {}, 'X-Signature is the base64 RSA-SHA256 signature (', auth.rsa_padding === 'pss' ? 'PSS' : 'PKCS#1 v1.5',
          ') of the exact body bytes, made with the simulator\'s private key. Verify it with the public key (',
          el('code', {}, 'signatureKey'), ' of the subscription, or ', el('code', {}, 'accessrc-sim keys show'), '):'),
        el('pre', {class: 'code'}, [
          "# body.json: the exact bytes received; sig.b64: the X-Signature header",
          `printf '%s' ${shellQuote(get('x-signature') || '<X-Signature>')} | base64 -d > sig.bin`,
          'openssl dgst -sha256 ' + (auth.rsa_padding === 'pss' ? '-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 ' : '') +
            '-verify public.pem -signature sig.bin body.json'].join('\n')));
    } else if (kind === 'hmac') {
      box.append(
        el('p', {}, 'x-signature is ', el('code', {}, 'sha256='), ' + the lower-case hex HMAC-SHA256 of the exact body bytes, keyed with the subscription secret. Recompute and compare in constant time:'),
        el('pre', {class: 'code'}, ['# body.json: the exact bytes received; SECRET: the subscription secret',
          'openssl dgst -sha256 -hmac "$SECRET" body.json',
          `# must print the hex after sha256= in: ${get('x-signature') || 'x-signature'}`].join('\n')));
    } else if (kind === 'header') {
      box.append(el('p', {}, `The ${auth.header_name || 'API-key'} header carries the subscription's key (masked here). Compare it with your stored value in constant time.`));
    } else if (kind === 'basic') {
      box.append(el('p', {}, 'Authorization: Basic base64(username:password), masked here. Compare it with your stored credentials in constant time.'));
    } else if (kind === 'authorization') {
      box.append(el('p', {}, 'ReachFive sends the configured Authorization value verbatim (masked here); there is no signature.'));
    } else {
      box.append(el('p', {}, job.platform === 'reachfive' ? 'No Authorization configured: ReachFive signs nothing.' : 'This subscription has no authentication (auth: null).'));
    }
    if (job.expected_failure) box.append(el('p', {class: 'notice info'}, `⚑ A scenario sent this request with the fault “${job.fault}” on purpose; the receiver refused it (HTTP ${job.last_status}), as a correct receiver does. Not a failed delivery.`));
    else if (job.fault) box.append(el('p', {class: 'notice info'}, `This request carries the scenario fault “${job.fault}”: the scenario's report says whether the receiver answered as it should.`));
    if (job.source === 'dashboard:forged-signature') box.append(el('p', {class: 'notice error'}, '⚠ This delivery was sent with a forged signature on purpose: a correct receiver answers 401.'));
    return box;
  }

  function receiverSaid(attempt) {
    try {
      const body = JSON.parse(attempt.response_body);
      if (body && body.error && body.error.message) return `${body.error.message} (${body.error.type || body.error.code})`;
      if (body && body.message) return body.message;
    } catch (e) { /* not JSON */ }
    return '';
  }

  function renderDetail(job, calls) {
    const fresh = !state.jobs.has(job.id);
    if (mergeJob({...job, attempts: undefined, body: undefined})) renderJobs(fresh ? new Set([job.id]) : new Set());
    const status = jobStatus(job);
    const attempts = job.attempts || [];
    const last = attempts[attempts.length - 1];
    const body = job.body;
    $('#detail-title').replaceChildren(chip(status), ' ', job.event);
    const actions = el('div', {class: 'actions'},
      el('button', {type: 'button', class: 'primary', id: 'redeliver', onclick: () => redeliver(job),
        disabled: !['succeeded', 'exhausted'].includes(job.state),
        title: 'Send the same body with the same X-JobId again, as the platforms\' resend does'}, '↻ Redeliver'),
      el('button', {type: 'button', id: 'copy-body', onclick: () => copyText(body, 'Body')}, 'Copy body'),
      el('button', {type: 'button', id: 'copy-curl', onclick: () => copyText(curlFor(job, last || attempts[0]), 'curl command')}, 'Copy curl'));
    const facts = el('dl', {class: 'facts'},
      el('dt', {}, 'Job id'), el('dd', {class: 'id'}, job.id),
      el('dt', {}, 'Platform'), el('dd', {}, PLATFORM_NAMES[job.platform] || job.platform),
      el('dt', {}, 'Target'), el('dd', {}, job.url),
      el('dt', {}, 'Attempts'), el('dd', {}, `${attemptsText(job)} (${attemptsTitle(job)})`),
      el('dt', {}, 'Created'), el('dd', {}, fmtTime(job.created_at)),
      job.next_attempt_at ? [el('dt', {}, 'Next attempt'), el('dd', {}, fmtTime(job.next_attempt_at))] : null,
      job.subscription_id ? [el('dt', {}, 'Subscription'), el('dd', {class: 'id'}, job.subscription_id)] : null,
      job.redelivery_of ? [el('dt', {}, 'Redelivery of'), el('dd', {class: 'id'}, el('a', {href: `#job/${job.redelivery_of}`}, job.redelivery_of))] : null,
      job.x_job_id ? [el('dt', {}, 'X-JobId'), el('dd', {class: 'id'}, job.x_job_id)] : null,
      job.source ? [el('dt', {}, 'Source'), el('dd', {}, job.origin && job.origin !== job.source ? `${job.source} (${job.origin})` : job.source)] : null,
      job.fault ? [el('dt', {}, 'Scenario fault'), el('dd', {}, job.fault)] : null,
      job.body_length !== undefined ? [el('dt', {}, 'Body size'), el('dd', {id: 'body-size'},
        `${job.body_length} bytes` + (job.body_truncated ? ' (first 64 KiB shown)' : ''),
        el('br'), el('span', {class: 'id muted'}, `SHA-256 ${job.body_sha256}`))] : null,
      job.credentials_cleared ? [el('dt', {}, 'Credentials'), el('dd', {class: 'muted'},
        'cleared when the job finished; a redelivery uses its subscription\'s')] : null);
    const attemptList = el('ol', {class: 'attempts', id: 'attempt-list'}, attempts.map((a, i) => el('li', {dataset: {number: a.number, ok: a.ok ? 'yes' : 'no'}},
      el('div', {class: 'head'},
        el('strong', {}, `${job.x_job_id ? 'X-JobAttempt' : 'Attempt'} ${a.number}`), httpCode(a.status, a.error),
        el('span', {class: 'muted'}, `${Math.round(a.duration_ms)} ms`),
        el('span', {class: 'muted'}, fmtTime(a.started_at))),
      receiverSaid(a) ? el('p', {}, 'Receiver: ', el('strong', {}, receiverSaid(a))) : a.error ? el('p', {class: 'muted'}, a.error) : null,
      a.request_body_truncated ? el('p', {class: 'muted body-cap'}, `Request body: ${a.request_body_length} bytes sent, the first 64 KiB stored (SHA-256 ${a.request_body_sha256})`) : null,
      el('details', {open: i === attempts.length - 1},
        el('summary', {}, 'Response body'),
        el('pre', {class: 'code response'}, a.response_body ? pretty(a.response_body) : '(empty)')),
      el('details', {}, el('summary', {}, 'Request headers'), headersTable(a.request_headers)))));
    const requestHeaders = last ? headersTable(last.request_headers) : el('p', {class: 'muted'}, 'Not sent yet.');
    $('#detail-body').replaceChildren(
      actions, facts,
      el('h3', {}, 'Attempts'),
      attempts.length ? attemptList : el('p', {class: 'muted'}, 'No attempt yet: queued.'),
      el('h3', {id: 'thread-title'}, 'Calls back ', el('span', {class: 'muted'}, '(event out, calls in, in time order)')),
      threadOf(job, attempts, calls),
      el('h3', {}, 'Request headers', el('span', {class: 'muted'}, ' (secrets masked)')), requestHeaders,
      el('h3', {}, 'Body'), el('pre', {class: 'code', id: 'detail-json'}, pretty(body)),
      el('h3', {}, 'Signature'), signatureHelp(job, last),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // the loop: calls a receiver makes back to the platform APIs (GET /api/calls), one thread per job
  const CALL_BODY_CAP = 16 * 1024;  // what the server keeps of a call's bodies (store/loop.py CALL_BODY_CAP)

  function callAnswerSaid(call) {
    try {
      const body = JSON.parse(call.response_body);
      const err = body && (body.error || (body.code ? body : null));
      if (err && err.message) return `${err.message}${err.code && typeof err.code === 'string' ? ` (${err.code})` : ''}`;
      if (body && body.data && body.data.message) return body.data.message;
    } catch (e) { /* not JSON */ }
    return '';
  }

  function bodySummary(text, length, truncated, what) {
    if (!length) return `${what} (empty)`;
    return `${what} (${length} bytes${truncated ? `, the first ${CALL_BODY_CAP / 1024} KiB kept` : ''})`;
  }

  // one call as a list item: method, path, answer, time; the job it follows; headers and bodies on demand
  function callItem(call, opts = {}) {
    const path = call.query ? `${call.path}?${call.query}` : call.path;
    const said = callAnswerSaid(call);
    const follows = call.job_id
      ? el('span', {class: 'follows'}, 'follows job ', el('a', {href: `#job/${call.job_id}`, class: 'id', title: call.job_id}, shortId(call.job_id)))
      : el('span', {class: 'follows muted'}, 'follows no delivery');
    const responseTruncated = call.response_length > (call.response_body || '').length && call.response_body;
    const ok = call.status >= 200 && call.status < 300;
    return el('li', {class: 'call', dataset: {call: String(call.id), path: call.path, job: call.job_id || '', dir: 'in', ok: ok ? 'yes' : 'no'}},
      el('div', {class: 'head'},
        el('span', {class: 'dir', 'aria-hidden': 'true'}, '⬅'), el('span', {class: 'visually-hidden'}, 'Call received: '),
        el('strong', {class: 'mono'}, `${call.method} ${path}`), httpCode(call.status),
        el('span', {class: 'muted'}, `${Math.round(call.duration_ms || 0)} ms`),
        el('span', {class: 'muted'}, fmtTime(call.started_at)),
        opts.showJob ? follows : null),
      said ? el('p', {}, 'Answered: ', el('strong', {}, said)) : null,
      el('details', {open: Boolean(opts.open)},
        el('summary', {}, bodySummary(call.body, call.body_length, call.body_truncated, 'Request body')),
        el('pre', {class: 'code call-body'}, call.body ? pretty(call.body) : (call.body_length ? '(not kept)' : '(empty)'))),
      el('details', {},
        el('summary', {}, bodySummary(call.response_body, call.response_length, responseTruncated, 'Answer body')),
        el('pre', {class: 'code'}, call.response_body ? pretty(call.response_body) : (call.response_length ? '(not kept: not text)' : '(empty)'))),
      el('details', {}, el('summary', {}, 'Request headers (credentials masked)'), headersTable(call.headers)));
  }

  // "event out, calls in": each attempt sent, then every call that followed the job, merged in time order
  function threadOf(job, attempts, calls) {
    if (calls instanceof Error) {
      return el('p', {class: 'notice error', id: 'thread', role: 'alert'}, `Could not load the calls back: ${calls.message}`);
    }
    const list = Array.isArray(calls) ? calls : [];
    const items = [
      ...attempts.map((a) => ({at: a.started_at || 0, order: 0, id: a.number, node: el('li', {class: 'out', dataset: {dir: 'out', number: a.number}},
        el('div', {class: 'head'},
          el('span', {class: 'dir', 'aria-hidden': 'true'}, '➤'), el('span', {class: 'visually-hidden'}, 'Event out: '),
          el('strong', {}, `${job.event} sent`), el('span', {class: 'muted'}, `${job.x_job_id ? 'X-JobAttempt' : 'attempt'} ${a.number}`),
          httpCode(a.status, a.error), el('span', {class: 'muted'}, fmtTime(a.started_at))))})),
      ...list.map((c) => ({at: c.started_at || 0, order: 1, id: c.id, node: callItem(c)})),
    ].sort((x, y) => (x.at - y.at) || (x.order - y.order) || (x.id - y.id));
    const hint = list.length ? null : el('p', {class: 'muted', id: 'thread-empty'},
      'No call back yet. A call to the platform APIs that names what this job sent (e.g. POST /api/DeliveryRequest/Sync ',
      'with its deliveryRequestId, or a Print Queue download of its BadgeExportZipFileId) shows here as it arrives.');
    return el('div', {id: 'thread-box'},
      el('ol', {class: 'attempts thread', id: 'thread', 'aria-labelledby': 'thread-title'}, items.map((i) => i.node)), hint);
  }

  function callArrived(call) {
    if (call.job_id && state.openJob === call.job_id) refreshDetail();
    loopChanged();
  }

  // the "Calls & reviews" view
  const loop = {calls: [], reviews: [], timer: null, serial: 0};

  function loopChanged() {
    if ($('#view-loop').hidden) return;
    clearTimeout(loop.timer);
    loop.timer = setTimeout(loadLoop, 250);  // one reload for a burst of calls
  }

  function loadLoop() { return Promise.all([loadCalls(), loadReviews()]); }

  async function loadCalls() {
    const serial = ++loop.serial;
    const params = new URLSearchParams({limit: '200'});
    const path = $('#calls-path').value.trim();
    if (path) params.set('path', path);
    try {
      const data = await api('GET', `${R.calls}?${params}`);
      if (serial !== loop.serial) return;  // a newer filter's answer wins
      loop.calls = Array.isArray(data) ? data : [];
      renderCalls();
    } catch (e) {
      $('#calls-summary').textContent = `Could not load the calls: ${e.message}`;
    }
  }

  function renderCalls() {
    const follows = $('#calls-follows').value;
    const shown = loop.calls.filter((c) => !follows || (follows === 'job') === Boolean(c.job_id));
    const path = $('#calls-path').value.trim();
    $('#calls-summary').textContent = loop.calls.length
      ? `${shown.length} call(s)${path ? ` to ${path}…` : ''}${follows ? (follows === 'job' ? ' that follow a delivery' : ' that follow no delivery') : ''} (the newest 200 at most).`
      : (path ? `No call to ${path}… yet.` : 'No call yet. Calls to the platform APIs (DeliveryChannel/Create, DeliveryRequest/Sync, Delivery/Sync, the Print Queue, the subscription APIs) show here as they arrive.');
    $('#calls-list').replaceChildren(...shown.map((c) => callItem(c, {showJob: true})));
  }

  function reviewMode() { return (boot.review && boot.review.mode) || 'approve'; }

  function canDecide(channel) {
    // manual review, or a channel proposed under it that still waits for a person (no decision time)
    return channel.status === 'pending' && (reviewMode() === 'manual' || channel.due_at === null || channel.due_at === undefined);
  }

  async function loadReviews() {
    try {
      const data = await api('GET', R.reviews);
      loop.reviews = Array.isArray(data) ? data : [];
      renderReviews();
    } catch (e) {
      $('#reviews-body').replaceChildren(el('tr', {}, el('td', {colspan: 7, class: 'empty'}, `Could not load: ${e.message}`)));
    }
  }

  const REVIEW_STATES = {
    pending: {cls: 'pending', icon: '◷', word: 'Pending review'},
    Approved: {cls: 'succeeded', icon: '✔', word: 'Approved'},
    Rejected: {cls: 'exhausted', icon: '✖', word: 'Rejected'},
  };

  function renderReviews() {
    const mode = reviewMode();
    const delay = boot.review ? boot.review.delay : null;
    $('#review-mode').textContent = mode === 'manual'
      ? 'Review: manual (serve --review manual). Approve or reject each proposed channel here: the decision goes to the provider as DELIVERY_CHANNEL_STATUS_UPDATED (a rejection carries your reason as its message).'
      : `Review: automatic (serve --review ${mode} --review-delay ${delay}): every proposed channel is ${mode === 'reject' ? 'rejected' : 'approved'} ${delay} s after its DeliveryChannel/Create. Read-only here; start serve with --review manual to decide from this page.`;
    const body = $('#reviews-body');
    const open = $('tr.review-editor', body);
    const editing = open ? open.dataset.editorFor : null;
    if (!loop.reviews.length) {
      body.replaceChildren(el('tr', {}, el('td', {colspan: 7, class: 'empty'}, 'No delivery channel proposed yet (POST /api/DeliveryChannel/Create).')));
      return;
    }
    const rows = [];
    for (const ch of loop.reviews) {
      const st = REVIEW_STATES[ch.status] || {cls: 'idle', icon: '●', word: ch.status};
      const name = (ch.request && typeof ch.request.name === 'string') ? ch.request.name : '—';
      const decision = ch.status === 'pending'
        ? (ch.due_at ? `automatic (${ch.review}) at ${fmtTime(ch.due_at)}` : 'waits for a person')
        : [`by ${ch.decided_by || '?'} at ${fmtTime(ch.decided_at)}`, ch.reason ? el('div', {class: 'reason'}, `Reason: ${ch.reason}`) : null];
      const jobs = (ch.jobs || []).map((id) => el('a', {href: `#job/${id}`, class: 'id', title: id}, shortId(id)));
      const act = (label, handler, cls, action) => el('button', {type: 'button', class: `small ${cls || ''}`, onclick: handler,
        dataset: {action}, 'aria-label': `${label}: delivery channel ${name} (${ch.providerDeliveryChannelId})`}, label);
      const actions = canDecide(ch)
        ? el('div', {class: 'actions tight'},
          act('✔ Approve', (ev) => decide(ch, 'approve', '', ev.currentTarget), 'primary', 'approve'),
          act('✖ Reject…', (ev) => rejectEditor(ch, ev.currentTarget), 'danger', 'reject'))
        : el('span', {class: 'muted'}, ch.status === 'pending' ? 'automatic' : '—');
      rows.push(el('tr', {dataset: {channel: ch.providerDeliveryChannelId, status: ch.status}},
        el('td', {'data-label': 'Status'}, chip(st)),
        el('td', {'data-label': 'Channel', class: 'id wrap'}, ch.providerDeliveryChannelId),
        el('td', {'data-label': 'Name'}, name),
        el('td', {'data-label': 'Proposed'}, fmtTime(ch.created_at)),
        el('td', {'data-label': 'Decision'}, decision),
        el('td', {'data-label': 'Answer sent'}, jobs.length ? jobs : (ch.status === 'pending' ? '—' : el('span', {class: 'muted'}, 'none (no subscription to DELIVERY_CHANNEL_STATUS_UPDATED)'))),
        el('td', {'data-label': 'Actions'}, actions)));
      if (editing === ch.providerDeliveryChannelId && canDecide(ch)) rows.push(open);  // keep a reason being typed
    }
    body.replaceChildren(...rows);
  }

  function rejectEditor(channel, button) {
    const row = button.closest('tr');
    const existing = row.nextElementSibling;
    if (existing && existing.classList.contains('review-editor')) { existing.remove(); button.focus(); return; }
    const id = channel.providerDeliveryChannelId;
    const reason = el('input', {type: 'text', maxlength: '1024', required: true, autocomplete: 'off', id: `reject-reason-${id}`,
      class: 'reject-reason', 'aria-describedby': `reject-error-${id}`});
    const error = el('p', {class: 'notice error reject-error', id: `reject-error-${id}`, role: 'alert', hidden: true});
    const submit = async (ev) => {
      ev.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        error.textContent = 'A rejection needs a reason: it is sent to the provider as the message of DELIVERY_CHANNEL_STATUS_UPDATED.';
        error.hidden = false;
        reason.setAttribute('aria-invalid', 'true');
        reason.focus();
        return;
      }
      error.hidden = true;
      reason.removeAttribute('aria-invalid');
      await decide(channel, 'reject', text, ev.submitter || form.querySelector('button[type=submit]'), error);
    };
    const form = el('form', {class: 'row', novalidate: true, onsubmit: submit},
      el('label', {for: reason.id}, 'Reason ', el('span', {class: 'hint'}, '(sent as the event\'s message)'), reason),
      el('div', {class: 'actions tight'},
        el('button', {type: 'submit', class: 'small danger'}, '✖ Send rejection'),
        el('button', {type: 'button', class: 'small', onclick: () => { editorRow.remove(); button.focus(); }}, 'Cancel')));
    const editorRow = el('tr', {class: 'review-editor', dataset: {editorFor: id}}, el('td', {colspan: 7}, form, error));
    row.after(editorRow);
    reason.focus();
  }

  async function decide(channel, decision, reason, button, errorBox) {
    const id = channel.providerDeliveryChannelId;
    if (button) button.disabled = true;
    try {
      const body = decision === 'reject' ? {decision, reason} : {decision};
      const done = await api('POST', R.review.replace('{id}', encodeURIComponent(id)), body);
      const jobs = done.jobs || [];
      toast(`${done.status}: ${jobs.length ? `DELIVERY_CHANNEL_STATUS_UPDATED queued as job ${jobs.map(shortId).join(', ')}` : 'no subscription to DELIVERY_CHANNEL_STATUS_UPDATED, nothing sent'}`, jobs.length ? 'ok' : 'info');
      const editor = $(`tr.review-editor[data-editor-for="${CSS.escape(id)}"]`);
      if (editor) editor.remove();
    } catch (e) {
      const message = `Not ${decision === 'reject' ? 'rejected' : 'approved'}: ${e.message}`;
      if (errorBox) { errorBox.textContent = message; errorBox.hidden = false; } else toast(message, 'error');
    } finally {
      if (button) button.disabled = false;
    }
    await loadReviews();
  }

  function setupLoop() {
    let timer = null;
    $('#calls-path').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(loadCalls, 300); });
    $('#calls-follows').addEventListener('change', renderCalls);
  }

  async function redeliver(job) {
    try {
      const again = await api('POST', R.redeliver.replace('{id}', encodeURIComponent(job.id)));
      const id = again.id || again.jobId || (again.job && again.job.id);
      toast(`Redelivery queued as job ${shortId(id)} (same body, X-JobId ${shortId(job.id)})`, 'ok');
      if (id) location.hash = `#job/${id}`;
    } catch (e) {
      toast(`Redeliver failed: ${e.message}`, 'error');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // trigger panel
  const send = {payloadDirty: false};

  function eventsFor(platform) { return boot.events.filter((e) => e.platform === platform); }

  function fillSelect(select, options) {
    select.replaceChildren(...options.map(([value, label]) => el('option', {value}, label)));
  }

  function showAuthFor(root, platform) {
    $$('[data-auth-for]', root).forEach((node) => { node.hidden = node.dataset.authFor !== platform; });
  }

  function showKindFields(root, name) {
    const kind = (root.querySelector(`input[name="${name}"]:checked`) || {}).value;
    $$('[data-kind]', root).forEach((node) => { node.hidden = node.dataset.kind !== kind; });
    return kind;
  }

  function currentPreset() {
    return boot.presets.find((p) => p.id === $('#send-preset').value) || null;
  }

  function setupSend() {
    const form = $('#send-form');
    const platform = $('#send-platform'), event = $('#send-event'), preset = $('#send-preset');
    const onPlatform = () => {
      fillSelect(event, eventsFor(platform.value).map((e) => [e.name, e.availability === 'planned' ? `${e.name} (planned)` : e.name]));
      showAuthFor(form, platform.value);
      $('#forge-label').hidden = !['accredit', 'accessrc'].includes(platform.value);
      onEvent();
      setDefaultTarget();
    };
    const onEvent = () => {
      const presets = boot.presets.filter((p) => p.event === event.value);
      fillSelect(preset, presets.length ? presets.map((p) => [p.id, p.label]) : [['', 'Random values']]);
      onPreset();
    };
    const onPreset = () => {
      const spec = boot.events.find((e) => e.name === event.value);
      const p = currentPreset();
      const countOf = spec && spec.count_of;
      $('#send-count-label').hidden = !countOf;
      $('#send-count-of').textContent = countOf ? `(${countOf})` : '';
      if (p && p.count !== null && p.count !== undefined) $('#send-count').value = p.count;
      $('#send-event-note').textContent = [spec && spec.description, p && p.note].filter(Boolean).join(' ');
      regenerate();
    };
    platform.addEventListener('change', onPlatform);
    event.addEventListener('change', onEvent);
    preset.addEventListener('change', onPreset);
    $('#send-count').addEventListener('change', regenerate);
    $('#send-regenerate').addEventListener('click', regenerate);
    $('#send-body').addEventListener('input', () => { send.payloadDirty = true; checkBody(); });
    $$('input[name="auth-kind"]', form).forEach((r) => r.addEventListener('change', () => showKindFields(form, 'auth-kind')));
    showKindFields(form, 'auth-kind');
    form.addEventListener('submit', (ev) => { ev.preventDefault(); submitSend(); });
    if (boot.demo) {
      const box = $('#send-demo-targets');
      box.hidden = false;
      box.append(el('span', {class: 'muted'}, 'Demo receivers:'));
      for (const target of boot.demo.targets) {
        box.append(el('button', {type: 'button', class: 'small', dataset: {target: target.id},
          onclick: () => useDemoTarget(target)}, target.label));
      }
    }
    onPlatform();
  }

  function setDefaultTarget() {
    if (!boot.demo) return;
    const platform = $('#send-platform').value;
    const target = boot.demo.targets.find((t) => t.platform === platform && t.default);
    if (target && (!$('#send-url').value || $('#send-url').dataset.auto === '1')) useDemoTarget(target, true);
  }

  function useDemoTarget(target, quiet) {
    const form = $('#send-form');
    if ($('#send-platform').value !== target.platform) {
      $('#send-platform').value = target.platform;
      $('#send-platform').dispatchEvent(new Event('change'));
    }
    $('#send-url').value = target.url;
    $('#send-url').dataset.auto = '1';
    const auth = target.auth || {};
    if (target.platform === 'accessrc') {
      const radio = form.querySelector(`input[name="auth-kind"][value="${auth.kind || 'none'}"]`);
      if (radio) radio.checked = true;
      if (auth.kind === 'hmac') $('#auth-secret').value = auth.secret;
      showKindFields(form, 'auth-kind');
    }
    if (target.platform === 'reachfive') $('#auth-authorization').value = auth.authorization || '';
    if (!quiet) toast(`Target: ${target.label}`, 'info', 2000);
  }

  let genSerial = 0;
  async function regenerate() {
    const p = currentPreset();
    const eventName = $('#send-event').value;
    const spec = boot.events.find((e) => e.name === eventName);
    const params = new URLSearchParams({event: eventName});
    if (p) params.set('preset', p.id);
    if (spec && spec.count_of) params.set('count', $('#send-count').value || '0');
    const serial = ++genSerial;
    try {
      const data = await api('GET', `${R.sample}?${params}`);
      if (serial !== genSerial) return;
      $('#send-body').value = JSON.stringify(data.payload, null, 2);
      send.payloadDirty = false;
      checkBody();
    } catch (e) {
      $('#send-body-problems').textContent = `Could not generate: ${e.message}`;
    }
  }

  function checkBody() {
    const out = $('#send-body-problems');
    try {
      JSON.parse($('#send-body').value);
      out.textContent = send.payloadDirty ? '✎ edited' : '';
      return true;
    } catch (e) {
      out.textContent = `✖ not valid JSON: ${e.message}`;
      return false;
    }
  }

  function readAuth(form, prefix, platform) {
    if (platform === 'accredit') return prefix === 'auth' ? {rsa_padding: $('#auth-rsa-padding').value} : null;
    if (platform === 'reachfive') {
      const value = $(`#${prefix}-authorization`).value.trim();
      return value ? {authorization: value} : null;
    }
    const kind = showKindFields(form, prefix === 'auth' ? 'auth-kind' : 'sub-auth-kind');
    if (kind === 'hmac') return {type: 'hmac', secret: $(`#${prefix}-secret`).value};
    if (kind === 'header') return {type: 'header', headerName: $(`#${prefix}-header-name`).value, headerValue: $(`#${prefix}-header-value`).value};
    if (kind === 'basic') return {type: 'basic', username: $(`#${prefix}-username`).value, password: $(`#${prefix}-password`).value};
    return null;
  }

  function parseDelays(text) {
    text = text.trim();
    if (!text) return undefined;
    return text.split(',').map((part) => Number(part.trim()));
  }

  async function submitSend() {
    const result = $('#send-result');
    if (!checkBody()) { notice(result, 'The payload is not valid JSON.', 'error'); $('#send-body').focus(); return; }
    const url = $('#send-url').value.trim();
    if (!url) { notice(result, 'Give the target URL.', 'error'); $('#send-url').focus(); return; }
    const platform = $('#send-platform').value;
    const request = {
      event: $('#send-event').value,
      url,
      payload: JSON.parse($('#send-body').value),
      auth: readAuth($('#send-form'), 'auth', platform),
      forge_signature: $('#send-forge').checked && !$('#forge-label').hidden,
    };
    const delays = parseDelays($('#send-delays').value);
    if (delays !== undefined) request.retry_delays = delays;
    const timeout = Number($('#send-timeout').value);
    if (timeout) request.timeout = timeout;
    if (platform === 'accessrc') request.profile = $('#send-profile').value;
    $('#send-submit').disabled = true;
    result.replaceChildren(el('p', {class: 'muted'}, 'Sending…'));
    try {
      const job = await api('POST', R.send, request);
      mergeJob(job);
      renderJobs(new Set([job.id]));
      result.replaceChildren(el('p', {class: 'notice ok', role: 'status'}, `Queued job ${shortId(job.id)}: `,
        el('a', {href: `#job/${job.id}`}, 'open it'), ' or watch the ', el('a', {href: '#deliveries'}, 'delivery log'), '.'));
      if (!send.payloadDirty) regenerate();
    } catch (e) {
      notice(result, `Not sent: ${e.message}${e.field ? ` (field ${e.field})` : ''}`, 'error');
    } finally {
      $('#send-submit').disabled = false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // subscriptions
  function scheduleText(sub) {
    const s = sub.schedule;
    if (!s) return 'on demand';
    return s.kind === 'interval' ? `every ${s.seconds} s` : `cron ${s.cron}`;
  }

  function authText(auth) {
    if (!auth || !auth.kind || auth.kind === 'none') return 'none';
    if (auth.kind === 'header') return `header ${auth.header_name}`;
    if (auth.kind === 'rsa') return 'RSA X-Signature';
    return auth.kind;
  }

  async function loadSubs() {
    try {
      const data = await api('GET', R.subscriptions);
      state.subs = Array.isArray(data) ? data : (data.subscriptions || data.items || []);
      renderSubs();
    } catch (e) {
      $('#subs-body').replaceChildren(el('tr', {}, el('td', {colspan: 8, class: 'empty'}, `Could not load: ${e.message}`)));
    }
  }

  function renderSubs() {
    const body = $('#subs-body');
    if (!state.subs.length) {
      body.replaceChildren(el('tr', {}, el('td', {colspan: 8, class: 'empty'}, 'No subscription yet.')));
      return;
    }
    body.replaceChildren(...state.subs.map((sub) => {
      const st = sub.paused ? {cls: 'paused', icon: '‖', word: 'Paused'} : sub.schedule ? {cls: 'active', icon: '▶', word: 'Scheduled'} : {cls: 'idle', icon: '●', word: 'On demand'};
      const act = (label, handler, cls) => el('button', {type: 'button', class: `small ${cls || ''}`, onclick: handler,
        'aria-label': `${label}: ${sub.event} to ${sub.url}`}, label);
      return el('tr', {dataset: {sub: sub.id}},
        el('td', {'data-label': 'State'}, chip(st)),
        el('td', {'data-label': 'Event'}, el('strong', {}, sub.event)),
        el('td', {'data-label': 'Platform'}, PLATFORM_NAMES[sub.platform] || sub.platform),
        el('td', {'data-label': 'Callback', class: 'wrap'}, sub.url),
        el('td', {'data-label': 'Auth'}, authText(sub.auth) + (sub.profile && sub.profile !== 'documented' ? ` · ${sub.profile}` : '')),
        el('td', {'data-label': 'Schedule'}, scheduleText(sub)),
        el('td', {'data-label': 'Fired'}, String(sub.fired_count || 0)),
        el('td', {'data-label': 'Actions'}, el('div', {class: 'actions tight'},
          act('➤ Fire now', () => subAction(sub, 'fire')),
          sub.paused ? act('▶ Resume', () => subAction(sub, 'resume')) : act('‖ Pause', () => subAction(sub, 'pause')),
          act('◷ Schedule', (ev) => scheduleEditor(sub, ev.currentTarget)),
          act('✕ Delete', () => subAction(sub, 'delete'), 'danger'))));
    }));
  }

  function scheduleEditor(sub, button) {
    const row = button.closest('tr');
    const existing = row.nextElementSibling;
    if (existing && existing.classList.contains('schedule-editor')) { existing.remove(); return; }
    const s = sub.schedule || {};
    const kind = el('select', {'aria-label': 'Schedule kind'},
      el('option', {value: 'interval', selected: s.kind !== 'cron'}, 'every N seconds'),
      el('option', {value: 'cron', selected: s.kind === 'cron'}, 'cron (UTC)'));
    const value = el('input', {type: 'text', 'aria-label': 'Seconds or cron expression', spellcheck: 'false',
      value: s.kind === 'cron' ? s.cron : String(s.seconds || 30)});
    const out = el('span', {'aria-live': 'polite'});
    const url = R.subscription.replace('{id}', encodeURIComponent(sub.id)) + '/schedule';
    const save = async (ev) => {
      ev.preventDefault();
      const body = kind.value === 'cron' ? {cron: value.value.trim()} : {interval_seconds: Number(value.value)};
      try { await api('PUT', url, body); toast('Schedule saved', 'ok'); loadSubs(); }
      catch (e) { out.replaceChildren(el('span', {class: 'code-bad'}, `✖ ${e.message}`)); }
    };
    const remove = async () => {
      try { await api('DELETE', url); toast('Schedule removed: on demand only', 'ok'); loadSubs(); }
      catch (e) { out.replaceChildren(el('span', {class: 'code-bad'}, `✖ ${e.message}`)); }
    };
    const form = el('form', {class: 'row', onsubmit: save},
      el('label', {}, 'Fire ', kind), el('label', {}, 'Every / expression ', value),
      el('div', {class: 'actions tight'}, el('button', {type: 'submit', class: 'small primary'}, 'Save schedule'),
        sub.schedule ? el('button', {type: 'button', class: 'small', onclick: remove}, 'Remove schedule') : null), out);
    row.after(el('tr', {class: 'schedule-editor'}, el('td', {colspan: 8}, form)));
    value.focus();
  }

  async function subAction(sub, action) {
    try {
      if (action === 'delete') {
        if (!confirm(`Delete the subscription ${sub.event} → ${sub.url}?`)) return;
        await api('DELETE', R.subscription.replace('{id}', encodeURIComponent(sub.id)));
        toast('Subscription deleted', 'ok');
      } else {
        const res = await api('POST', R[`sub_${action}`].replace('{id}', encodeURIComponent(sub.id)));
        if (action === 'fire') {
          const id = res && (res.id || res.jobId || (res.job && res.job.id));
          toast(`Fired: job ${shortId(id)}`, 'ok');
        } else {
          toast(action === 'pause' ? 'Paused' : 'Resumed', 'ok');
        }
      }
    } catch (e) {
      toast(`${action} failed: ${e.message}`, 'error');
    }
    loadSubs();
  }

  function setupSubs() {
    const form = $('#sub-form');
    const platform = $('#sub-platform');
    const onPlatform = () => {
      fillSelect($('#sub-event'), eventsFor(platform.value).map((e) => [e.name, e.availability === 'planned' ? `${e.name} (planned)` : e.name]));
      showAuthFor(form, platform.value);
      if (boot.demo && (!$('#sub-url').value || $('#sub-url').dataset.auto === '1')) {
        const target = boot.demo.targets.find((t) => t.platform === platform.value && t.default);
        if (target) {
          $('#sub-url').value = target.url;
          $('#sub-url').dataset.auto = '1';
          if (target.auth && target.auth.kind === 'hmac') {
            form.querySelector('input[name="sub-auth-kind"][value="hmac"]').checked = true;
            $('#sub-secret').value = target.auth.secret;
          }
          if (target.auth && target.auth.authorization) $('#sub-authorization').value = target.auth.authorization;
        }
      }
      showKindFields(form, 'sub-auth-kind');
    };
    platform.addEventListener('change', onPlatform);
    $$('input[name="sub-auth-kind"]', form).forEach((r) => r.addEventListener('change', () => showKindFields(form, 'sub-auth-kind')));
    const onSchedule = () => {
      const kind = form.querySelector('input[name="sub-schedule"]:checked').value;
      $$('[data-schedule]', form).forEach((node) => { node.hidden = node.dataset.schedule !== kind; });
    };
    $$('input[name="sub-schedule"]', form).forEach((r) => r.addEventListener('change', onSchedule));
    onSchedule();
    onPlatform();
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const out = $('#sub-result');
      const kind = form.querySelector('input[name="sub-schedule"]:checked').value;
      const request = {platform: platform.value, event: $('#sub-event').value, url: $('#sub-url').value.trim()};
      const auth = readAuth(form, 'sub', platform.value);
      if (platform.value !== 'accredit') request.auth = auth;
      if (platform.value === 'accessrc') request.profile = $('#sub-profile').value;
      if (platform.value === 'reachfive') request.timeout = Number($('#sub-timeout').value) || undefined;
      if (platform.value === 'accredit' && $('#sub-tenant').value.trim()) request.meta = {tenantId: $('#sub-tenant').value.trim()};
      if (kind === 'interval') request.schedule = {interval_seconds: Number($('#sub-interval').value)};
      if (kind === 'cron') request.schedule = {cron: $('#sub-cron').value.trim()};
      const seed = $('#sub-seed').value.trim();
      if (seed) request.seed = Number(seed);
      try {
        const sub = await api('POST', R.subscriptions, request);
        notice(out, `Subscribed: ${sub.event} → ${sub.url}`, 'ok');
        loadSubs();
      } catch (e) {
        notice(out, `Not subscribed: ${e.message}${e.field ? ` (field ${e.field})` : ''}`, 'error');
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // scenarios
  const scen = {loaded: false, files: [], uploads: [], run: null, timer: null};

  function setupScenarios() {
    const select = $('#scenario-target');
    const options = [];
    if (boot.demo) {
      options.push(['auto', 'Demo receiver of the scenario\'s platform']);
      boot.demo.targets.forEach((t) => options.push([`demo:${t.id}`, `Demo: ${t.label}`]));
      $('#scenario-vars').value = Object.entries(boot.demo.scenario_vars || {}).map(([k, v]) => `${k}=${v}`).join('\n');
    }
    options.push(['own', 'The URL written in the scenario file'], ['custom', 'Another URL…']);
    fillSelect(select, options);
    const onTarget = () => { $('#scenario-url-label').hidden = select.value !== 'custom'; };
    select.addEventListener('change', onTarget);
    onTarget();
    $('#scenario-file').addEventListener('change', async (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      const text = await file.text();
      scen.uploads.push({file: file.name, name: file.name, platform: null, steps: null, text});
      renderScenarioFiles();
      toast(`${file.name} added: press its Run button`, 'ok');
    });
  }

  function setupReadiness() {
    const form = $('#readiness-form');
    const platform = $('#ready-platform');
    const onPlatform = () => {
      $$('[data-ready-for]', form).forEach((node) => { node.hidden = node.dataset.readyFor !== platform.value; });
      if (boot.demo) {
        const t = boot.demo.targets.find((x) => x.platform === platform.value && x.default);
        $('#ready-url').value = t ? t.url : '';
        $('#ready-secret').value = (t && t.auth.secret) || '';
        $('#ready-authorization').value = (t && t.auth.authorization) || '';
      }
    };
    platform.addEventListener('change', onPlatform);
    onPlatform();
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const request = {platform: platform.value, url: $('#ready-url').value.trim()};
      if (platform.value === 'accessrc' && $('#ready-secret').value) request.auth = {type: 'hmac', secret: $('#ready-secret').value};
      if (platform.value === 'reachfive' && $('#ready-authorization').value.trim()) request.auth = {authorization: $('#ready-authorization').value.trim()};
      $('#ready-submit').disabled = true;
      try {
        const run = await api('POST', R.readiness, request);
        renderReadiness(run);
        pollReadiness(run.id);
      } catch (e) {
        notice($('#readiness'), `Not run: ${e.message}${e.field ? ` (field ${e.field})` : ''}`, 'error');
        $('#ready-submit').disabled = false;
      }
    });
  }

  async function pollReadiness(id) {
    try {
      const run = await api('GET', `${R.readiness}/${encodeURIComponent(id)}`);
      renderReadiness(run);
      if (run.status === 'running') { setTimeout(() => pollReadiness(id), 400); return; }
    } catch (e) {
      setTimeout(() => pollReadiness(id), 1000);
      return;
    }
    $('#ready-submit').disabled = false;
  }

  const ROW_STATES = {
    pass: {cls: 'pass', icon: '✔', word: 'PASS'}, fail: {cls: 'fail', icon: '✖', word: 'FAIL'},
    warn: {cls: 'warn', icon: '!', word: 'WARN'},  // only checks of inferred rules failed: advice
    'n/a': {cls: 'skip', icon: '–', word: 'N/A'}, pending: {cls: 'running', icon: '↻', word: 'running'},
  };

  function renderReadiness(run) {
    const applicable = run.rows.filter((r) => r.state !== 'n/a');
    const failed = applicable.filter((r) => r.state === 'fail');
    const advice = run.advice || [];
    let verdict;
    if (run.status === 'running') verdict = el('p', {class: 'notice info'}, `Checking ${run.url}…`);
    else if (run.ready && !advice.length) verdict = el('p', {class: 'notice ok', id: 'verdict'}, `✔ READY — all ${applicable.length} applicable checks passed`);
    else if (run.ready) verdict = el('p', {class: 'notice ok', id: 'verdict'}, `✔ READY — every documented check passed; ${advice.length} inferred check(s) failed: see advice (NOT READY with strict)`);
    else verdict = el('p', {class: 'notice error', id: 'verdict'}, `✖ NOT READY — ${failed.length} of ${applicable.length} applicable checks failed` + (run.error ? `: ${run.error}` : ''));
    $('#readiness').replaceChildren(
      el('table', {class: 'list', id: 'readiness-table'},
        el('caption', {class: 'visually-hidden'}, 'Readiness rows'),
        el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Result'), el('th', {scope: 'col'}, 'Check'), el('th', {scope: 'col'}, 'Evidence'))),
        el('tbody', {}, run.rows.map((r) => el('tr', {dataset: {row: r.id, state: r.state}},
          el('td', {'data-label': 'Result'}, chip(ROW_STATES[r.state] || ROW_STATES.pending)),
          el('td', {'data-label': 'Check'}, el('strong', {}, r.title)),
          el('td', {'data-label': 'Evidence'}, r.evidence.map((e) => el('div', {class: 'muted'}, e))))))),
      ...(advice.length ? [el('ul', {id: 'readiness-advice'}, advice.map((a) => el('li', {class: 'muted'}, `advice: ${a}`)))] : []),
      verdict);  // replaceChildren would write a null as the text "null"
  }

  function scenarioTarget(platform) {
    const value = $('#scenario-target').value;
    if (value === 'custom') return $('#scenario-url').value.trim() || undefined;
    if (value === 'own') return undefined;
    if (value === 'auto' && boot.demo) {
      const t = boot.demo.targets.find((x) => x.platform === platform && x.default);
      return t ? t.url : undefined;
    }
    if (value.startsWith('demo:')) return boot.demo.targets.find((t) => `demo:${t.id}` === value).url;
    return undefined;
  }

  function scenarioVars() {
    const vars = {};
    for (const line of $('#scenario-vars').value.split('\n')) {
      const cut = line.indexOf('=');
      if (cut > 0) vars[line.slice(0, cut).trim()] = line.slice(cut + 1).trim();
    }
    return vars;
  }

  async function loadScenarios() {
    if (!R.scenarios) {
      $('#scenario-setup').hidden = true;
      $('#scenarios-body').replaceChildren(el('tr', {}, el('td', {colspan: 5, class: 'empty'}, 'This simulator has no scenario runner.')));
      return;
    }
    try {
      const data = await api('GET', R.scenarios.list);
      scen.files = Array.isArray(data) ? data : (data.scenarios || []);
      renderScenarioFiles();
    } catch (e) {
      $('#scenarios-body').replaceChildren(el('tr', {}, el('td', {colspan: 5, class: 'empty'}, `Could not load: ${e.message}`)));
    }
  }

  function renderScenarioFiles() {
    const all = [...scen.uploads.map((u) => ({...u, uploaded: true})), ...scen.files];
    if (!all.length) {
      $('#scenarios-body').replaceChildren(el('tr', {}, el('td', {colspan: 5, class: 'empty'}, 'No scenario file.')));
      return;
    }
    $('#scenarios-body').replaceChildren(...all.map((f) => el('tr', {dataset: {file: f.file}},
      el('td', {'data-label': 'Scenario'}, el('strong', {}, f.name || f.file),
        f.problems ? el('div', {class: 'code-bad'}, `✖ ${f.problems.length} problem(s): ${f.problems[0]}`) : null),
      el('td', {'data-label': 'Platform'}, f.platform ? (PLATFORM_NAMES[f.platform] || f.platform) : '—'),
      el('td', {'data-label': 'File', class: 'id wrap'}, f.uploaded ? `${f.file} (yours)` : f.file),
      el('td', {'data-label': 'Steps'}, f.steps === null || f.steps === undefined ? '—' : String(f.steps)),
      el('td', {'data-label': 'Run'}, el('button', {type: 'button', class: 'small primary', disabled: !!f.problems,
        'aria-label': `Run ${f.name || f.file}`, onclick: () => startScenario(f)}, '▶ Run')))));
  }

  async function startScenario(f) {
    const request = {vars: scenarioVars()};
    if (f.uploaded) request.scenario = f.text; else request.file = f.file;
    const url = scenarioTarget(f.platform || guessPlatform(f));
    if (url) request.url = url;
    const box = $('#scenario-run');
    box.hidden = false;
    try {
      const run = await api('POST', R.scenarios.runs, request);
      scen.run = {id: run.id, steps: [], data: run, file: f.file};
      renderRun();
      pollRun(run.id);
      box.scrollIntoView({block: 'nearest'});
    } catch (e) {
      const problems = (e.body && e.body.error && e.body.error.problems) || [];
      box.replaceChildren(el('p', {class: 'notice error', role: 'alert'}, `Not run: ${e.message}`),
        el('ul', {}, problems.map((p) => el('li', {class: 'mono'}, p))));
    }
  }

  function guessPlatform(f) {
    const m = /(accessrc|accredit|reachfive)/.exec(f.text || f.file || '');
    return m ? m[1] : null;
  }

  async function pollRun(id) {
    clearTimeout(scen.timer);
    if (!scen.run || scen.run.id !== id) return;
    try {
      const data = await api('GET', `${R.scenarios.run.replace('{id}', encodeURIComponent(id))}?since=${scen.run.steps.length}`);
      if (!scen.run || scen.run.id !== id) return;
      scen.run.steps.push(...(data.steps || []));
      scen.run.data = data;
      renderRun();
      if (data.status === 'running') scen.timer = setTimeout(() => pollRun(id), 300);
    } catch (e) {
      scen.timer = setTimeout(() => pollRun(id), 1000);
    }
  }

  function stepChip(step) {
    if (step.skipped) return chip({cls: 'skip', icon: '–', word: 'Skipped'});
    if (step.passed === true) return chip({cls: 'pass', icon: '✔', word: 'Pass'});
    if (step.warned) return chip({cls: 'warn', icon: '!', word: 'Warn'});  // an inferred rule: advice
    if (step.passed === false) return chip({cls: 'fail', icon: '✖', word: 'Fail'});
    return chip({cls: 'idle', icon: '●', word: 'Done'});
  }

  function failureText(f) {
    if (typeof f === 'string') return f;
    const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
    const actual = f.missing ? '(missing)' : show(f.actual);  // a path the answer does not have
    return `✖ ${f.label ? `${f.label}: ` : ''}${f.check}: expected ${show(f.expected)}, got ${actual}`;
  }

  function renderRun() {
    const {data, steps} = scen.run;
    const result = data.status === 'running' ? {cls: 'running', icon: '↻', word: 'Running'} :
      data.result === 'passed' ? {cls: 'pass', icon: '✔', word: 'Passed'} : {cls: 'fail', icon: '✖', word: 'Failed'};
    $('#scenario-run').replaceChildren(
      el('h3', {}, chip(result), ' ', data.name || 'Scenario'),
      el('p', {class: 'muted'}, `${scen.run.file || data.file || ''} → ${data.url || ''} · ${data.summary || ''}`),
      el('p', {class: 'notice error', hidden: !data.error}, data.error || ''),
      // the inferred rules a `set:` breaks (an added field, …): advice, the steps were sent all the same
      el('div', {class: 'notice info', id: 'scenario-notes', hidden: !(data.notes || []).length},
        el('strong', {}, 'Note (inferred rules: advice only)'),
        el('ul', {}, (data.notes || []).map((n) => el('li', {class: 'mono'}, n)))),
      el('ol', {class: 'steps', id: 'scenario-steps'}, steps.map((step) => el('li', {dataset: {passed: String(step.passed)}},
        stepChip(step),
        el('span', {class: 'what'}, el('strong', {}, step.name), ' ', el('span', {class: 'muted'}, step.kind || ''),
          step.skipped ? el('div', {class: 'muted'}, step.skipped) : null,
          (step.failures || []).map((f) => el('div', {class: 'code-bad'}, failureText(f)))),
        el('span', {class: 'muted'}, step.status || ''),
        step.ms !== null && step.ms !== undefined ? el('span', {class: 'muted'}, `${Math.round(step.ms)} ms`) : null))));
  }

  // ---------------------------------------------------------------------------------------------
  // views and routing
  const VIEWS = ['deliveries', 'send', 'subscriptions', 'scenarios', 'loop'];
  function route() {
    const hash = location.hash.replace(/^#/, '') || 'deliveries';
    if (hash.startsWith('job/')) {
      const id = decodeURIComponent(hash.slice(4));
      if ($('#view-deliveries').hidden) showView('deliveries');
      openDetail(id);
      return;
    }
    if (!$('#detail').hidden) { state.openJob = null; $('#detail').hidden = true; }
    showView(VIEWS.includes(hash) ? hash : 'deliveries');
  }

  function showView(name) {
    VIEWS.forEach((v) => { $(`#view-${v}`).hidden = v !== name; });
    $$('nav.tabs a').forEach((a) => {
      if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    if (name === 'subscriptions') loadSubs();
    if (name === 'scenarios') loadScenarios();
    if (name === 'loop') loadLoop();
  }

  // ---------------------------------------------------------------------------------------------
  // serve --demo: the one scheduled demo subscription runs from the start; the banner says so and pauses it
  async function setupDemoSchedule() {
    const sched = boot.demo && boot.demo.schedule;
    const box = $('#demo-schedule');
    if (!sched || !box) return;
    const url = R.subscription.replace('{id}', encodeURIComponent(sched.subscription_id));
    const text = el('span', {id: 'demo-schedule-text'});
    const button = el('button', {type: 'button', id: 'demo-schedule-toggle'});
    const show = (paused) => {
      box.dataset.paused = paused ? '1' : '0';
      text.textContent = paused
        ? `Demo schedule paused: ${sched.event} to the ${sched.target} fires only when you resume it (or fire it from Subscriptions). `
        : `Demo schedule running: one ${sched.event} every ${sched.seconds} s to the ${sched.target}, so the log shows life. Pause it here or in Subscriptions. `;
      button.textContent = paused ? '▶ Resume demo schedule' : '⏸ Pause demo schedule';
    };
    button.addEventListener('click', async () => {
      const paused = box.dataset.paused === '1';
      try {
        const sub = await api('POST', R[paused ? 'sub_resume' : 'sub_pause'].replace('{id}', encodeURIComponent(sched.subscription_id)));
        show(Boolean(sub.paused));
        toast(sub.paused ? 'Demo schedule paused' : 'Demo schedule running', 'ok');
      } catch (e) { toast(`Could not ${paused ? 'resume' : 'pause'} the demo schedule: ${e.message}`, 'error'); }
    });
    box.replaceChildren(text, button);
    show(false);
    box.hidden = false;
    try { const sub = await api('GET', url); show(Boolean(sub.paused)); } catch (e) { box.hidden = true; }  // removed since
  }

  function init() {
    window.accessrcSimDashboard = state;  // for the curious (and the tests): the page's own view of the log
    setupKey();
    setupSend();
    setupSubs();
    if (R.scenarios) setupScenarios();
    setupReadiness();
    setupLoop();
    $('#filter-state').addEventListener('change', () => renderJobs());
    $('#filter-platform').addEventListener('change', () => renderJobs());
    $('#filter-source').addEventListener('change', () => renderJobs());
    setupDemoSchedule();
    $('#detail-close').addEventListener('click', closeDetail);
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && !$('#detail').hidden) closeDetail(); });
    window.addEventListener('hashchange', route);
    route();
    streamLoop();
  }

  init();
})();
