// Uploads: each file gets an item with a <progress>, first for the bytes sent, then for
// the conversion. Up to 4 MB through the API; bigger files through an upload URL.

import { api, path, sendForm } from './api.js';
import { $, el, say, setProgress } from './dom.js';
import { formatDuration, formatPercent, formatSize, libraryName } from './format.js';
import { fileChanged, pollUntilSettled, SETTLED } from './store.js';

export const DIRECT_MAX = 4 * 1024 * 1024; // 4,194,304 bytes: over that, the upload URL

// An upload URL's file answers 404 until its event is handled; a big file takes a while.
const NOT_FOUND_FOR_MS = 10 * 60 * 1000;

class UploadItem {
  constructor(file, name, into) {
    this.file = file;
    this.name = name;
    this.target = libraryName(name);
    this.phase = el('span', { class: 'badge' });
    this.progress = el('progress', { max: '1', value: '0', 'aria-label': 'Upload progress' });
    this.message = el('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
    this.actions = el('div', { class: 'actions' });
    const renamed = this.target !== name ? el('p', { class: 'hint' }, `becomes ${this.target}`) : null;
    this.li = el(
      'li',
      { class: 'item' },
      el(
        'div',
        { class: 'row-main' },
        el('p', { class: 'filename' }, name),
        renamed,
        el('p', { class: 'facts' }, el('span', {}, formatSize(file.size)), this.phase),
        this.progress,
        this.message,
      ),
      this.actions,
    );
    into.prepend(this.li);
  }

  show(phase, fraction, kind = 'busy') {
    this.li.dataset.phase = kind;
    this.phase.textContent = phase;
    setProgress(this.progress, fraction);
  }

  fromFile(file) {
    if (file.status === 'converting') {
      this.show(`converting ${formatPercent(file.progress)}`.trim(), file.progress);
    } else if (file.status === 'pending') {
      this.show('checking', null);
    } else if (file.status === 'ready') {
      this.show('ready', 1, 'done');
      say(this.message, `In the library as “${file.filename}” (${formatDuration(file.duration)}).`, 'ok');
    } else if (file.status === 'invalid') {
      this.show('invalid', 0, 'failed');
      say(this.message, file.status_reason || 'This file cannot be played.', 'error');
    }
  }

  async run(overwrite = false) {
    this.actions.replaceChildren();
    say(this.message, '');
    this.show('uploading 0%', 0);
    const onProgress = (fraction) => this.show(`uploading ${formatPercent(fraction)}`.trim(), fraction);
    try {
      const settled = this.file.size <= DIRECT_MAX
        ? await this.direct(overwrite, onProgress)
        : await this.throughUrl(overwrite, onProgress);
      this.fromFile(settled);
    } catch (error) {
      this.failed(error);
    }
    this.actions.append(el('button', { type: 'button', onclick: () => this.li.remove() }, 'Dismiss'));
  }

  async direct(overwrite, onProgress) {
    const form = new FormData();
    form.append('file', this.file, this.name);
    const url = overwrite ? '/api/audio/upload?overwrite=true' : '/api/audio/upload';
    const { body } = await sendForm(url, form, { auth: true, onProgress });
    fileChanged(body);
    this.fromFile(body);
    if (SETTLED.has(body.status)) return body;
    return pollUntilSettled(body.filename, { onUpdate: (file) => this.fromFile(file) });
  }

  async throughUrl(overwrite, onProgress) {
    // When replacing, the old version answers until the new one is handled: wait past it.
    let before = null;
    if (overwrite) {
      before = await api.get(path`/api/audio/${this.target}/metadata`).catch(() => null);
    }
    const json = { filename: this.name, size: this.file.size };
    if (overwrite) json.overwrite = true;
    const upload = await api.post('/api/audio/upload-url', { json });
    const form = new FormData();
    for (const [key, value] of Object.entries(upload.fields || {})) form.append(key, value);
    form.append('file', this.file, this.name); // last: S3 reads the fields first
    await sendForm(upload.url, form, { onProgress }); // no token: it may be another origin
    this.show('checking', null);
    const isFresh = (file) => !before || file.etag !== before.etag || file.uploaded_at !== before.uploaded_at;
    return pollUntilSettled(this.target, {
      notFoundForMs: NOT_FOUND_FOR_MS,
      isFresh,
      freshWithinMs: 30000,
      first: 500,
      onUpdate: (file) => this.fromFile(file),
    });
  }

  failed(error) {
    this.show('failed', 0, 'failed');
    say(this.message, error.message, 'error');
    if (error.status === 409) {
      this.actions.append(
        el('button', { type: 'button', onclick: () => this.run(true) }, 'Replace'),
      );
    }
  }
}

/** Upload one file (or a recording) and show it in `into` (a list). */
export function startUpload(file, into, name = file.name) {
  const item = new UploadItem(file, name, into);
  item.run();
  return item;
}

function uploadAll(files, into) {
  for (const file of files) startUpload(file, into);
}

export function init() {
  const input = $('#upload-input');
  const zone = $('#drop-zone');
  const items = $('#upload-list');
  input.addEventListener('change', () => {
    uploadAll([...input.files], items);
    input.value = ''; // the same file can be chosen again
  });
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes('Files');
  zone.addEventListener('dragenter', (event) => {
    if (hasFiles(event)) zone.classList.add('over');
  });
  zone.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('over');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    uploadAll([...event.dataTransfer.files], items);
  });
  // A file dropped beside the zone must not make the browser leave the page to open it.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event) && !zone.contains(event.target)) event.preventDefault();
    });
  }
}

export function stop() {
  $('#upload-list').replaceChildren();
}
