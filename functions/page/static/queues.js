// Queues: the list (a row per queue, updated in place) and the editor (files found and
// added, reordered with Move up / Move down or by dragging, saved as one request).

import { api, path } from './api.js';
import { $, ask, debounce, el, say, uid, whileBusy } from './dom.js';
import {
  formatDuration, PLAY_MODES, playModeLabel, queueNameProblem, totalDuration,
} from './format.js';
import { known, on, remember } from './store.js';

const rows = new Map(); // queue name → QueueRow
let list;
let status;
let empty;
let newButton;

// The editor's state.
let editing = null; // null: a new queue; else the name of the queue being edited
let chosen = []; // filenames, in play order
let dragFrom = null;
let searchSeen = 0;

let editor;
let heading;
let nameInput;
let titleInput;
let modeSelect;
let findInput;
let results;
let chosenList;
let total;
let editorStatus;

class QueueRow {
  constructor(queue) {
    this.queue = queue;
    this.audio = null;
    this.name = el('p', { class: 'filename' });
    this.title = el('p', { class: 'tags' });
    this.facts = el('p', { class: 'facts' });
    this.card = el('p', { class: 'on-card' });
    this.listen = el('button', { type: 'button', 'aria-expanded': 'false', onclick: () => this.toggle() }, 'Listen');
    const edit = el('button', { type: 'button', onclick: () => openEditor(this.queue) }, 'Edit');
    const revoke = el('button', { type: 'button', onclick: () => this.revoke(revoke) }, 'Revoke URL');
    const remove = el('button', { type: 'button', class: 'danger', onclick: () => this.remove(remove) }, 'Delete');
    const modeId = uid('card-mode');
    this.cardMode = el(
      'select',
      { id: modeId },
      el('option', { value: 'stream' }, 'One stream'),
      el('option', { value: 'chapters' }, 'A chapter per file'),
    );
    const put = el('button', { type: 'button', onclick: () => this.putOnCard(put) }, 'Put on Yoto card');
    this.takeOff = el('button', { type: 'button', onclick: () => this.takeOffCard() }, 'Take off card');
    this.player = el('div', { class: 'player', hidden: true });
    this.li = el(
      'li',
      { class: 'row' },
      el('div', { class: 'row-main' }, this.name, this.title, this.facts, this.card),
      el('div', { class: 'actions' }, this.listen, edit, revoke, remove),
      el(
        'div',
        { class: 'card-actions' },
        el('label', { for: modeId }, 'Card content'),
        this.cardMode,
        put,
        this.takeOff,
      ),
      this.player,
    );
    this.update(queue);
  }

  update(queue) {
    if (this.audio && queue.stream_url !== this.queue.stream_url) {
      this.audio.pause();
      this.audio.src = queue.stream_url;
    }
    this.queue = queue;
    this.name.textContent = queue.name;
    this.title.textContent = queue.title && queue.title !== queue.name ? queue.title : '';
    this.title.hidden = !this.title.textContent;
    const files = queue.files.length;
    this.facts.textContent = `${playModeLabel(queue.play_mode)} · ${files} file${files === 1 ? '' : 's'} · ${formatDuration(queue.total_duration)}`;
    this.card.textContent = queue.yoto_card_id ? `On Yoto card ${queue.yoto_card_id}` : '';
    this.card.hidden = !queue.yoto_card_id;
    this.takeOff.hidden = !queue.yoto_card_id;
  }

  toggle() {
    if (!this.audio) {
      this.audio = el('audio', { controls: true, preload: 'none', src: this.queue.stream_url });
      this.audio.addEventListener('error', () => {
        say(status, `The stream of “${this.queue.name}” cannot be played here (its URL may have been revoked).`, 'error');
      });
      this.player.append(this.audio);
    }
    const opening = this.player.hidden;
    this.player.hidden = !opening;
    this.listen.setAttribute('aria-expanded', String(opening));
    if (opening) this.audio.play().catch(() => {});
    else this.audio.pause();
  }

  revoke(button) {
    return whileBusy(button, async () => {
      try {
        this.update(await api.post(path`/api/streams/${this.queue.name}/revoke-url`));
        say(status, `“${this.queue.name}” has a new stream URL; the old one no longer plays.`, 'ok');
      } catch (error) {
        say(status, error.message, 'error');
      }
    });
  }

  async remove(button) {
    const name = this.queue.name;
    if (!(await ask(`Delete the queue “${name}”? Its files stay in the library.`))) return;
    await whileBusy(button, async () => {
      try {
        await deleteQueue(name, false);
      } catch (error) {
        if (error.status === 409 && (await ask(error.message, 'Delete anyway'))) {
          try {
            await deleteQueue(name, true);
          } catch (again) {
            say(status, again.message, 'error');
          }
        } else {
          say(status, error.message, 'error');
        }
      }
    });
  }

  putOnCard(button) {
    say(status, `Putting “${this.queue.name}” on a Yoto card…`);
    return whileBusy(button, async () => {
      try {
        const queue = await api.post(path`/api/streams/${this.queue.name}/yoto-card`, {
          query: { mode: this.cardMode.value },
        });
        if (queue && queue.name) this.update(queue);
        const card = this.queue.yoto_card_id ? ` ${this.queue.yoto_card_id}` : '';
        say(status, `“${this.queue.name}” is on Yoto card${card}.`, 'ok');
        refresh();
      } catch (error) {
        say(status, error.message, 'error'); // a 401 here says to use Sign in with Yoto
      }
    });
  }

  async takeOffCard() {
    try {
      await api.del(path`/api/streams/${this.queue.name}/yoto-card`);
      say(status, `“${this.queue.name}” is no longer on a Yoto card.`, 'ok');
      refresh();
    } catch (error) {
      say(status, error.message, 'error');
    }
  }
}

async function deleteQueue(name, force) {
  await api.del(path`/api/streams/${name}`, { query: force ? { force: 'true' } : undefined });
  say(status, `Deleted the queue “${name}”.`, 'ok');
  const row = rows.get(name);
  if (row) {
    row.audio?.pause();
    const hadFocus = row.li.contains(document.activeElement) || document.activeElement === document.body;
    const next = row.li.nextElementSibling || row.li.previousElementSibling;
    row.li.remove();
    if (hadFocus) (next?.querySelector('button') || newButton).focus();
    rows.delete(name);
  }
  empty.hidden = rows.size > 0;
}

function show(queues) {
  const names = new Set(queues.map((q) => q.name));
  for (const [name, row] of rows) {
    if (!names.has(name)) {
      row.audio?.pause();
      row.li.remove();
      rows.delete(name);
    }
  }
  let previous = null;
  for (const queue of queues) {
    let row = rows.get(queue.name);
    if (row) row.update(queue);
    else {
      row = new QueueRow(queue);
      rows.set(queue.name, row);
    }
    // Move only what is out of place (a moved <audio> would stop playing).
    const wanted = previous ? previous.nextSibling : list.firstChild;
    if (wanted !== row.li) list.insertBefore(row.li, wanted);
    previous = row.li;
  }
  empty.hidden = rows.size > 0;
}

export async function refresh() {
  try {
    const body = await api.get('/api/streams');
    show(body.queues || []);
  } catch (error) {
    say(status, error.message, 'error');
  }
}

// The editor -----------------------------------------------------------------------------

function openEditor(queue = null) {
  editing = queue ? queue.name : null;
  chosen = queue ? [...queue.files] : [];
  heading.textContent = queue ? `Editing “${queue.name}”` : 'A new queue';
  nameInput.value = queue ? queue.name : '';
  nameInput.readOnly = Boolean(queue);
  nameInput.removeAttribute('aria-invalid');
  titleInput.value = queue && queue.title !== queue.name ? queue.title : '';
  modeSelect.value = queue ? queue.play_mode : 'sequential';
  findInput.value = '';
  say(editorStatus, '');
  editor.hidden = false;
  renderChosen();
  findFiles('');
  (queue ? titleInput : nameInput).focus();
  editor.scrollIntoView({ block: 'start' });
  if (queue) learnDurations(queue.files);
}

function closeEditor() {
  editor.hidden = true;
  editing = null;
  chosen = [];
  chosenList.replaceChildren();
  results.replaceChildren();
}

async function learnDurations(names) {
  const missing = [...new Set(names)].filter((name) => !known.has(name));
  let next = 0;
  const worker = async () => {
    while (next < missing.length) {
      const name = missing[next++];
      try {
        remember([await api.get(path`/api/audio/${name}/metadata`)]);
      } catch {
        /* a missing file: saving names it */
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (!editor.hidden) renderChosen();
}

async function findFiles(query) {
  const seen = ++searchSeen;
  try {
    const body = query
      ? await api.get('/api/audio/search', { query: { q: query } })
      : await api.get('/api/audio/list', { query: { limit: 50 } });
    if (seen !== searchSeen || editor.hidden) return;
    remember(body.files);
    results.replaceChildren(...body.files.map(resultItem));
    if (!body.files.length) results.append(el('li', { class: 'hint' }, query ? 'Nothing found.' : 'The library is empty.'));
  } catch (error) {
    if (seen === searchSeen) say(editorStatus, error.message, 'error');
  }
}

function resultItem(file) {
  const ready = file.status === 'ready';
  const add = el('button', { type: 'button', disabled: !ready }, 'Add to queue');
  add.addEventListener('click', () => {
    chosen.push(file.filename);
    renderChosen();
    say(editorStatus, `Added “${file.filename}” (${chosen.length} in the queue).`);
  });
  return el(
    'li',
    { class: 'item' },
    el(
      'div',
      { class: 'row-main' },
      el('p', { class: 'filename' }, file.filename),
      el('p', { class: 'facts' }, formatDuration(file.duration), ready ? '' : ` · ${file.status}`),
    ),
    el('div', { class: 'actions' }, add),
  );
}

function move(from, to) {
  if (to < 0 || to >= chosen.length || from === to) return;
  const [name] = chosen.splice(from, 1);
  chosen.splice(to, 0, name);
  return name;
}

function moveBy(index, step, label) {
  const name = move(index, index + step);
  if (name === undefined) return;
  renderChosen({ index: index + step, label });
  say(editorStatus, `Moved “${name}” to place ${index + step + 1} of ${chosen.length}.`);
}

function renderChosen(focus = null) {
  // Keep the focus on the same control of the same item through a re-render.
  let keep = focus;
  const active = document.activeElement;
  if (!keep && active instanceof HTMLButtonElement && chosenList.contains(active)) {
    keep = { index: Number(active.closest('li').dataset.index), label: active.textContent };
  }
  chosenList.replaceChildren(...chosen.map(chosenItem));
  const sum = totalDuration(chosen.map((name) => known.get(name)?.duration));
  const files = `${chosen.length} file${chosen.length === 1 ? '' : 's'}`;
  total.textContent = chosen.length
    ? `${files} · ${formatDuration(sum.total)}${sum.unknown ? ' and some of unknown length' : ''}`
    : 'No files yet: find them above and add them.';
  if (keep && chosen.length) {
    const li = chosenList.children[Math.min(keep.index, chosen.length - 1)];
    const buttons = [...li.querySelectorAll('button')];
    const same = buttons.find((b) => b.textContent === keep.label && !b.disabled);
    (same || buttons.find((b) => !b.disabled && b.textContent.startsWith('Move')) || buttons[buttons.length - 1]).focus();
  }
}

function chosenItem(name, index) {
  const up = el('button', { type: 'button', disabled: index === 0 }, 'Move up');
  up.addEventListener('click', () => moveBy(index, -1, 'Move up'));
  const down = el('button', { type: 'button', disabled: index === chosen.length - 1 }, 'Move down');
  down.addEventListener('click', () => moveBy(index, 1, 'Move down'));
  const remove = el('button', { type: 'button' }, 'Remove');
  remove.addEventListener('click', () => {
    chosen.splice(index, 1);
    renderChosen({ index, label: 'Remove' });
    if (!chosen.length) findInput.focus();
    say(editorStatus, `Removed “${name}” from the queue.`);
  });
  const li = el(
    'li',
    { class: 'item chosen', draggable: 'true', 'data-index': index },
    el('span', { class: 'grip', 'aria-hidden': 'true' }, '⋮⋮'),
    el(
      'div',
      { class: 'row-main' },
      el('p', { class: 'filename' }, name),
      el('p', { class: 'facts' }, `${index + 1}. `, formatDuration(known.get(name)?.duration)),
    ),
    el('div', { class: 'actions' }, up, down, remove),
  );
  li.addEventListener('dragstart', (event) => {
    dragFrom = index;
    event.dataTransfer.effectAllowed = 'move';
    event.dataTransfer.setData('text/plain', name);
    li.classList.add('dragging');
  });
  li.addEventListener('dragend', () => {
    dragFrom = null;
    li.classList.remove('dragging');
    for (const other of chosenList.children) other.classList.remove('drop-target');
  });
  li.addEventListener('dragover', (event) => {
    if (dragFrom === null) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'move';
    li.classList.add('drop-target');
  });
  li.addEventListener('dragleave', () => li.classList.remove('drop-target'));
  li.addEventListener('drop', (event) => {
    if (dragFrom === null) return;
    event.preventDefault();
    // The dragged file takes the place of the one it is dropped on.
    const from = dragFrom;
    dragFrom = null;
    const moved = move(from, index);
    renderChosen();
    if (moved !== undefined) say(editorStatus, `Moved “${moved}” to place ${index + 1} of ${chosen.length}.`);
  });
  return li;
}

async function save(event) {
  event.preventDefault();
  const name = editing ?? nameInput.value.trim();
  const problem = queueNameProblem(name);
  if (problem) {
    nameInput.setAttribute('aria-invalid', 'true');
    say(editorStatus, problem, 'error');
    nameInput.focus();
    return;
  }
  nameInput.removeAttribute('aria-invalid');
  if (!chosen.length) {
    say(editorStatus, 'Add at least one file to the queue.', 'error');
    findInput.focus();
    return;
  }
  if (editing === null && rows.has(name) && !(await ask(`A queue named “${name}” exists already. Replace it?`))) {
    return;
  }
  const json = { files: chosen, play_mode: modeSelect.value };
  const title = titleInput.value.trim();
  if (title) json.title = title;
  try {
    const queue = await api.post(path`/api/streams/${name}/queue`, { json });
    closeEditor();
    await refresh();
    say(status, `Saved the queue “${queue.name}” (${queue.files.length} files, ${formatDuration(queue.total_duration)}). Press Listen to hear its stream.`, 'ok');
    rows.get(queue.name)?.listen.focus();
  } catch (error) {
    say(editorStatus, error.message, 'error');
  }
}

export function init() {
  list = $('#queue-list');
  status = $('#queues-status');
  empty = $('#queues-empty');
  newButton = $('#new-queue');
  editor = $('#queue-editor');
  heading = $('#queue-editor-heading');
  nameInput = $('#queue-name');
  titleInput = $('#queue-title');
  modeSelect = $('#queue-mode');
  findInput = $('#queue-find');
  results = $('#queue-results');
  chosenList = $('#queue-files');
  total = $('#queue-total');
  editorStatus = $('#queue-editor-status');
  modeSelect.replaceChildren(...PLAY_MODES.map(([value, label]) => el('option', { value }, label)));
  newButton.addEventListener('click', () => openEditor());
  editor.addEventListener('submit', save);
  $('#queue-cancel').addEventListener('click', () => {
    closeEditor();
    newButton.focus();
  });
  findInput.addEventListener('input', debounce(() => findFiles(findInput.value.trim()), 250));
  nameInput.addEventListener('input', () => {
    const problem = nameInput.value ? queueNameProblem(nameInput.value.trim()) : null;
    if (problem) nameInput.setAttribute('aria-invalid', 'true');
    else nameInput.removeAttribute('aria-invalid');
  });
  on('queues', refresh);
}

export function start() {
  refresh();
}

export function stop() {
  closeEditor();
  for (const row of rows.values()) row.audio?.pause();
  rows.clear();
  list.replaceChildren();
  say(status, '');
}
