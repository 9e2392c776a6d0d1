// Stories: text to speech, spoken by the server's engine.

import { api } from './api.js';
import { $, el, say, setProgress, whileBusy } from './dom.js';
import { formatDuration, formatPercent, storyFilename } from './format.js';
import { fileChanged, pollUntilSettled } from './store.js';

let form;
let text;
let voice;
let nameInput;
let status;
let progress;
let button;
let voicesLoaded = false;

async function loadVoices() {
  if (voicesLoaded) return;
  try {
    const body = await api.get('/api/tts/voices');
    const options = (body.voices || []).map((v) => {
      const label = v.language && v.name !== v.language ? `${v.name} (${v.language})` : v.name || v.id;
      return el('option', { value: v.id }, label);
    });
    voice.replaceChildren(el('option', { value: '' }, 'Default voice'), ...options);
    voicesLoaded = true;
  } catch (error) {
    // The default voice still works; say why the list is short.
    if (error.status !== 401) say(status, `The list of voices could not be loaded: ${error.message}`, 'error');
  }
}

function showProgress(file) {
  progress.hidden = false;
  setProgress(progress, file.progress);
  say(status, `Speaking “${file.filename}”… ${formatPercent(file.progress)}`.trim());
}

function done(file) {
  progress.hidden = true;
  if (file.status === 'ready') {
    say(status, `Story ready: “${file.filename}” (${formatDuration(file.duration)}), in the library.`, 'ok');
  } else {
    say(status, `The story could not be made: ${file.status_reason || file.status}.`, 'error');
  }
}

async function generate(event) {
  event.preventDefault();
  const story = text.value;
  if (!story.trim()) {
    say(status, 'Type the story first.', 'error');
    text.focus();
    return;
  }
  const json = { text: story };
  if (voice.value) json.voice = voice.value;
  const filename = storyFilename(nameInput.value);
  if (filename) json.filename = filename;
  progress.hidden = false;
  setProgress(progress, null);
  say(status, 'Speaking the story…');
  await whileBusy(button, async () => {
    try {
      const file = await api.post('/api/audio/generate-tts', { json });
      fileChanged(file);
      if (file.status === 'ready' || file.status === 'invalid') done(file);
      else {
        showProgress(file);
        done(await pollUntilSettled(file.filename, { onUpdate: showProgress }));
      }
    } catch (error) {
      progress.hidden = true;
      say(status, error.message, 'error');
    }
  });
}

export function init() {
  form = $('#story-form');
  text = $('#story-text');
  voice = $('#story-voice');
  nameInput = $('#story-name');
  status = $('#story-status');
  progress = $('#story-progress');
  button = $('#story-generate');
  form.addEventListener('submit', generate);
}

export function start() {
  loadVoices();
}

export function stop() {
  say(status, '');
  progress.hidden = true;
}
