// What the page knows about library files, shared by its sections, and the polling of a
// file until its conversion settles.

import { api, ApiError, path, token } from './api.js';
import { delay } from './dom.js';

/** filename → the latest AudioFile seen (durations for the queue editor). */
export const known = new Map();

const events = new EventTarget();

/** Any section saw a newer AudioFile: the library updates or inserts its row. */
export function fileChanged(file) {
  known.set(file.filename, file);
  events.dispatchEvent(new CustomEvent('file', { detail: file }));
}

export function fileRemoved(filename) {
  known.delete(filename);
  events.dispatchEvent(new CustomEvent('removed', { detail: filename }));
}

export function queuesChanged() {
  events.dispatchEvent(new Event('queues'));
}

export function remember(files) {
  for (const file of files) known.set(file.filename, file);
}

export function on(type, listener) {
  events.addEventListener(type, (event) => listener(event.detail));
}

export const SETTLED = new Set(['ready', 'invalid']);

/** Names some caller is polling already (the library skips them). */
export const watched = new Map();

/**
 * Poll a file's metadata about once a second until it is ready or invalid; each answer is
 * announced with fileChanged (and to `onUpdate`). `notFoundForMs`: keep asking through 404s that long (an upload
 * URL's file answers 404 until its event is handled). `isFresh(file)`: false while the answer
 * is still an older version (a replacement not yet seen), for at most `freshWithinMs`.
 */
export async function pollUntilSettled(
  filename,
  { notFoundForMs = 0, isFresh = () => true, freshWithinMs = 0, first = 1000, onUpdate } = {},
) {
  watched.set(filename, (watched.get(filename) || 0) + 1);
  const started = Date.now();
  let failures = 0;
  try {
    await delay(first);
    for (;;) {
      if (!token.get()) throw new ApiError(401, 'unauthorized', 'Signed out.');
      let file = null;
      try {
        file = await api.get(path`/api/audio/${filename}/metadata`);
        failures = 0;
      } catch (error) {
        const waited = Date.now() - started;
        if (error.status === 404 && waited < notFoundForMs) {
          await delay(1000);
          continue;
        }
        // A network hiccup (the server restarting) is retried a few times.
        if (error.status === 0 && failures < 5) {
          failures += 1;
          await delay(2000);
          continue;
        }
        throw error;
      }
      if (isFresh(file) || Date.now() - started > freshWithinMs) {
        fileChanged(file);
        if (onUpdate) onUpdate(file);
        if (SETTLED.has(file.status)) return file;
      }
      await delay(1000);
    }
  } finally {
    const left = (watched.get(filename) || 1) - 1;
    if (left) watched.set(filename, left);
    else watched.delete(filename);
  }
}
