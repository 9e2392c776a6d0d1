// The library: pages of files appended as they are needed, search, and one row per file
// (updated in place, never the whole list re-rendered).

import { api, path } from './api.js';
import { $, ask, debounce, el, say, setProgress, whileBusy } from './dom.js';
import { formatDuration, formatPercent, formatSize } from './format.js';
import {
  fileChanged, fileRemoved, on, queuesChanged, remember, SETTLED, watched,
} from './store.js';

const PAGE = 50;

const rows = new Map(); // filename → Row
let order = []; // the filenames shown, in the list's order (by filename) in list mode
let mode = 'list'; // 'list' | 'search'
let nextToken = null;
let exhausted = false;
let loading = false;
let nearEnd = false; // the observer's last word: is "Load more" within reach of the view?
let generation = 0; // bumped on every reset: late answers of an older view are dropped

let list;
let status;
let count;
let more;
let search;

class Row {
  constructor(file) {
    this.file = file;
    this.audio = null;
    this.name = el('p', { class: 'filename' });
    this.tags = el('p', { class: 'tags' });
    this.duration = el('span', { class: 'duration' });
    this.size = el('span', { class: 'size' });
    this.badge = el('span', { class: 'badge' });
    this.progress = el('progress', { 'aria-label': 'Conversion progress', max: '1', hidden: true });
    this.reason = el('p', { class: 'reason' });
    this.listen = el('button', { type: 'button', 'aria-expanded': 'false' }, 'Listen');
    this.listen.addEventListener('click', () => this.toggle());
    const revoke = el('button', { type: 'button', onclick: () => this.revoke(revoke) }, 'Revoke URL');
    const remove = el('button', { type: 'button', class: 'danger', onclick: () => this.remove(remove) }, 'Delete');
    this.player = el('div', { class: 'player', hidden: true });
    this.li = el(
      'li',
      { class: 'row' },
      el(
        'div',
        { class: 'row-main' },
        this.name,
        this.tags,
        el('p', { class: 'facts' }, this.duration, this.size, this.badge),
        this.progress,
        this.reason,
      ),
      el('div', { class: 'actions' }, this.listen, revoke, remove),
      this.player,
    );
    this.update(file);
  }

  update(file) {
    const urlChanged = this.file.url !== file.url;
    this.file = file;
    this.li.dataset.status = file.status;
    this.name.textContent = file.filename;
    const tags = [file.title, file.artist].filter((t) => typeof t === 'string' && t.trim());
    this.tags.textContent = tags.join(' — ');
    this.tags.hidden = tags.length === 0;
    this.duration.textContent = formatDuration(file.duration);
    this.size.textContent = formatSize(file.size);
    const converting = file.status === 'converting';
    this.badge.textContent = converting
      ? `converting ${formatPercent(file.progress)}`.trim()
      : file.status;
    this.progress.hidden = !converting;
    if (converting) setProgress(this.progress, file.progress);
    const reason = file.status === 'invalid' ? file.status_reason || 'This file cannot be played.' : '';
    this.reason.textContent = reason;
    this.reason.hidden = !reason;
    this.listen.disabled = !(file.status === 'ready' || file.status === 'pending');
    if (urlChanged && this.audio) {
      this.audio.pause();
      this.audio.src = file.url;
    }
  }

  toggle() {
    if (!this.audio) {
      this.audio = el('audio', { controls: true, preload: 'none', src: this.file.url });
      this.audio.addEventListener('error', () => {
        say(status, `“${this.file.filename}” cannot be played here (its URL may have been revoked, or the file is not ready).`, 'error');
      });
      this.player.append(this.audio);
    }
    const opening = this.player.hidden;
    this.player.hidden = !opening;
    this.listen.setAttribute('aria-expanded', String(opening));
    if (opening) this.audio.play().catch(() => {}); // a refused autoplay leaves the controls
    else this.audio.pause();
  }

  revoke(button) {
    return whileBusy(button, async () => {
      try {
        const file = await api.post(path`/api/audio/${this.file.filename}/revoke-url`);
        fileChanged(file);
        say(status, `“${file.filename}” has a new URL; the old one no longer plays.`, 'ok');
      } catch (error) {
        say(status, error.message, 'error');
      }
    });
  }

  async remove(button) {
    const name = this.file.filename;
    if (!(await ask(`Delete “${name}”? This cannot be undone.`))) return;
    await whileBusy(button, async () => {
      try {
        await deleteFile(name, false);
      } catch (error) {
        if (error.status === 409 && (await ask(error.message, 'Delete anyway'))) {
          try {
            await deleteFile(name, true);
          } catch (again) {
            say(status, again.message, 'error');
          }
        } else {
          say(status, error.message, 'error');
        }
      }
    });
  }
}

async function deleteFile(name, force) {
  await api.del(path`/api/audio/${name}`, { query: force ? { force: 'true' } : undefined });
  fileRemoved(name);
  if (force) queuesChanged(); // it left the queues that played it
  say(status, `Deleted “${name}”.`, 'ok');
}

function lowerIndex(name) {
  let low = 0;
  let high = order.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (order[mid] < name) low = mid + 1;
    else high = mid;
  }
  return low;
}

function appendFiles(files) {
  const fragment = document.createDocumentFragment();
  for (const file of files) {
    if (rows.has(file.filename)) {
      rows.get(file.filename).update(file);
      continue;
    }
    const row = new Row(file);
    rows.set(file.filename, row);
    order.push(file.filename);
    fragment.append(row.li);
  }
  list.append(fragment);
}

function insert(file) {
  // In the list's order, when it falls among what is loaded (later pages bring the rest).
  const last = order[order.length - 1];
  if (!exhausted && (last === undefined || file.filename > last)) return;
  const at = lowerIndex(file.filename);
  const row = new Row(file);
  rows.set(file.filename, row);
  const before = at < order.length ? rows.get(order[at]).li : null;
  order.splice(at, 0, file.filename);
  list.insertBefore(row.li, before);
}

function showCount() {
  if (mode === 'search') {
    count.textContent = rows.size ? `${rows.size} found` : 'Nothing found.';
  } else if (rows.size === 0 && exhausted) {
    count.textContent = 'No audio yet: upload files, record one or make a story below.';
  } else {
    count.textContent = exhausted ? `${rows.size} file${rows.size === 1 ? '' : 's'}` : `${rows.size} shown`;
  }
  more.hidden = mode !== 'list' || exhausted;
}

function clear() {
  generation += 1;
  for (const row of rows.values()) row.audio?.pause();
  rows.clear();
  order = [];
  list.replaceChildren();
  nextToken = null;
  exhausted = false;
}

async function loadPage() {
  if (loading || exhausted || mode !== 'list') return;
  loading = true;
  const hadFocus = document.activeElement === more;
  const firstNew = order.length;
  more.disabled = true;
  const seen = generation;
  try {
    const body = await api.get('/api/audio/list', { query: { limit: PAGE, next_token: nextToken } });
    if (seen !== generation) return;
    remember(body.files);
    appendFiles(body.files);
    nextToken = body.next_token || null;
    exhausted = !nextToken;
  } catch (error) {
    if (seen === generation) say(status, error.message, 'error');
  } finally {
    loading = false;
    more.disabled = false;
    if (seen === generation) {
      showCount();
      // From the keyboard, the next thing to reach is the first file of the new page.
      if (hadFocus && order.length > firstNew) rows.get(order[firstNew]).listen.focus();
      // The observer speaks only when the button's visibility changes: a short page (or a
      // scroll faster than a frame) can leave it in view with nothing said. Ask again.
      if (!exhausted && (nearEnd || inView(more))) {
        requestAnimationFrame(() => {
          if (nearEnd || inView(more)) loadPage();
        });
      }
    }
  }
}

function inView(node) {
  if (node.hidden) return false;
  const box = node.getBoundingClientRect();
  return box.top < window.innerHeight && box.bottom > 0;
}

async function runSearch(query) {
  clear();
  if (!query) {
    mode = 'list';
    say(status, '');
    await loadPage();
    return;
  }
  mode = 'search';
  more.hidden = true;
  const seen = generation;
  try {
    const body = await api.get('/api/audio/search', { query: { q: query } });
    if (seen !== generation) return;
    remember(body.files);
    appendFiles(body.files);
    exhausted = true;
    showCount();
  } catch (error) {
    if (seen === generation) say(status, error.message, 'error');
  }
}

// Rows still pending or converting (that no upload is watching) are asked about every second.
let pollTimer = 0;
let polling = false;

async function pollUnsettled() {
  if (polling) return;
  const names = [...rows.values()]
    .filter((row) => !SETTLED.has(row.file.status) && !watched.has(row.file.filename))
    .slice(0, 8)
    .map((row) => row.file.filename);
  if (!names.length) return;
  polling = true;
  try {
    await Promise.all(
      names.map(async (name) => {
        try {
          fileChanged(await api.get(path`/api/audio/${name}/metadata`));
        } catch (error) {
          if (error.status === 404) fileRemoved(name);
        }
      }),
    );
  } finally {
    polling = false;
  }
}

export function init() {
  list = $('#library-list');
  status = $('#library-status');
  count = $('#library-count');
  more = $('#load-more');
  search = $('#search');
  more.addEventListener('click', loadPage);
  new IntersectionObserver((entries) => {
    nearEnd = entries[entries.length - 1].isIntersecting;
    if (nearEnd) loadPage();
  }, { rootMargin: '400px' }).observe(more);
  const searchSoon = debounce(() => runSearch(search.value.trim()), 250);
  search.addEventListener('input', searchSoon);
  on('file', (file) => {
    const row = rows.get(file.filename);
    if (row) row.update(file);
    else if (mode === 'list' && file.status !== 'invalid') {
      insert(file);
      showCount();
    }
  });
  on('removed', (name) => {
    const row = rows.get(name);
    if (!row) return;
    row.audio?.pause();
    // Keyboard users keep their place: the focus goes to the next row (or the search box).
    const hadFocus = row.li.contains(document.activeElement) || document.activeElement === document.body;
    const next = row.li.nextElementSibling || row.li.previousElementSibling;
    row.li.remove();
    if (hadFocus) (next?.querySelector('button') || search).focus();
    rows.delete(name);
    const at = order.indexOf(name);
    if (at >= 0) order.splice(at, 1);
    showCount();
  });
}

export function start() {
  search.value = '';
  mode = 'list';
  clear();
  say(status, '');
  loadPage();
  clearInterval(pollTimer);
  pollTimer = setInterval(pollUnsettled, 1000);
}

export function stop() {
  clearInterval(pollTimer);
  clear();
  count.textContent = '';
  more.hidden = true;
}
