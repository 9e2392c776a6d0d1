// Recording with the microphone (MediaRecorder), then uploading it like any file.

import { $, say } from './dom.js';
import { recordingFilename } from './format.js';
import { startUpload } from './upload.js';

const PREFERRED = ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4'];

let recorder = null;
let stream = null;
let recording = null; // the last recording's Blob, until saved
let startedAt = 0;
let ticker = 0;

let recordButton;
let stopButton;
let elapsed;
let status;
let saveForm;
let nameInput;
let items;
let preview;
let previewUrl = '';

function extensionOf(mimeType) {
  if (mimeType.includes('mp4')) return 'm4a';
  if (mimeType.includes('ogg')) return 'ogg';
  return 'webm';
}

function defaultName() {
  const now = new Date();
  const two = (n) => String(n).padStart(2, '0');
  return `recording-${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}-${two(now.getHours())}${two(now.getMinutes())}${two(now.getSeconds())}`;
}

function whyNot(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'The microphone was not allowed. Allow it for this page in the browser’s site settings, then press Record again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Plug one in, then press Record again.';
    case 'NotReadableError':
      return 'The microphone is in use by another program, or cannot be read.';
    default:
      return `Recording could not start: ${error && error.message ? error.message : 'unknown error'}.`;
  }
}

function showElapsed() {
  const seconds = Math.floor((Date.now() - startedAt) / 1000);
  elapsed.textContent = `${seconds} s`;
}

async function begin() {
  say(status, '');
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
    say(status, 'This browser cannot record here (recording needs http://127.0.0.1, localhost or https).', 'error');
    return;
  }
  recordButton.disabled = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    recordButton.disabled = false;
    recordButton.focus();
    say(status, whyNot(error), 'error');
    return;
  }
  const mimeType = PREFERRED.find((type) => MediaRecorder.isTypeSupported(type)) || '';
  recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
  const chunks = [];
  recorder.addEventListener('dataavailable', (event) => {
    if (event.data && event.data.size) chunks.push(event.data);
  });
  recorder.addEventListener('stop', () => {
    const type = recorder.mimeType || mimeType || 'audio/webm';
    recording = new Blob(chunks, { type });
    release();
    setPreview(recording);
    recordButton.disabled = false;
    nameInput.value = defaultName();
    saveForm.hidden = false;
    say(status, `Recorded ${elapsed.textContent}. Name it, then save it to the library.`, 'ok');
    nameInput.focus();
    nameInput.select();
  });
  recording = null;
  saveForm.hidden = true;
  recorder.start(1000);
  startedAt = Date.now();
  showElapsed();
  ticker = setInterval(showElapsed, 250);
  elapsed.hidden = false;
  stopButton.disabled = false;
  stopButton.focus();
  say(status, 'Recording…');
}

/** Play the recording back before it is saved (the page's policy allows blob: media). */
function setPreview(blob) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = blob ? URL.createObjectURL(blob) : '';
  if (previewUrl) preview.src = previewUrl;
  else preview.removeAttribute('src');
}

function release() {
  clearInterval(ticker);
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
}

function end() {
  stopButton.disabled = true;
  if (recorder && recorder.state !== 'inactive') {
    showElapsed();
    recorder.stop();
  }
}

function save(event) {
  event.preventDefault();
  if (!recording) return;
  const filename = recordingFilename(nameInput.value, extensionOf(recording.type));
  if (!filename) {
    say(status, 'Give the recording a name.', 'error');
    nameInput.focus();
    return;
  }
  const file = new File([recording], filename, { type: recording.type });
  recording = null;
  saveForm.hidden = true;
  preview.pause();
  setPreview(null);
  say(status, `Saving “${filename}”…`);
  startUpload(file, items, filename);
}

export function init() {
  recordButton = $('#record-start');
  stopButton = $('#record-stop');
  elapsed = $('#record-elapsed');
  status = $('#record-status');
  saveForm = $('#record-save');
  nameInput = $('#record-name');
  items = $('#record-list');
  preview = $('#record-preview');
  recordButton.addEventListener('click', begin);
  stopButton.addEventListener('click', end);
  saveForm.addEventListener('submit', save);
}

export function stop() {
  end();
  release();
  recording = null;
  saveForm.hidden = true;
  setPreview(null);
  items.replaceChildren();
}
