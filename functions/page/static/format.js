// Pure formatting: no DOM, no state. Each function takes a value from the API and returns
// the text a parent reads.

const CONVERTED_EXTENSIONS = [
  'm4a', 'm4b', 'mp4', 'aac', 'wav', 'flac', 'ogg', 'oga', 'opus', 'webm', 'aif', 'aiff',
];

/** Seconds as m:ss, or h:mm:ss from one hour; "—" when unknown (null while pending). */
export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—';
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, '0');
  if (hours > 0) return `${hours}:${String(minutes).padStart(2, '0')}:${secs}`;
  return `${minutes}:${secs}`;
}

/** Bytes as B, KB, MB, GB (1 KB = 1024 bytes), one decimal below 10. */
export function formatSize(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  // Promote when the rounded figure would read 1024 (1023.96 KB is "1.0 MB").
  while (unit < units.length - 1 && round(value) >= 1024) {
    value /= 1024;
    unit += 1;
  }
  return `${round(value)} ${units[unit]}`;
}

function round(value) {
  return value < 9.95 ? value.toFixed(1) : String(Math.round(value));
}

/** A fraction 0–1 as a whole percentage ("45%"); "" when unknown. */
export function formatPercent(fraction) {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return '';
  return `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
}

/** The library name of an upload: `story.m4a` is catalogued as `story.mp3` (API.md, Names). */
export function libraryName(uploadName) {
  const dot = uploadName.lastIndexOf('.');
  if (dot > 0) {
    const extension = uploadName.slice(dot + 1).toLowerCase();
    if (CONVERTED_EXTENSIONS.includes(extension)) return `${uploadName.slice(0, dot)}.mp3`;
  }
  return uploadName;
}

/** A story's filename: the name given, with ".mp3" added unless it has it; null if blank. */
export function storyFilename(name) {
  const trimmed = name.trim();
  if (!trimmed) return null;
  return /\.mp3$/i.test(trimmed) ? trimmed : `${trimmed}.mp3`;
}

/** A recording's upload name: the name given without a trailing audio extension, then
 * `.extension` (webm from Chromium and Firefox); null if blank. */
export function recordingFilename(name, extension = 'webm') {
  const stem = name.trim().replace(/\.(webm|mp3|m4a|ogg)$/i, '').trim();
  return stem ? `${stem}.${extension}` : null;
}

export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Why a queue name is refused, or null when it is good. */
export function queueNameProblem(name) {
  if (!name) return 'Give the queue a name.';
  if (name.length > 64) return 'A queue name is at most 64 characters.';
  if (!QUEUE_NAME.test(name)) return 'A queue name uses only letters, digits, - and _ (no spaces).';
  return null;
}

/** Sum of known durations, and whether some were unknown. */
export function totalDuration(durations) {
  let total = 0;
  let unknown = false;
  for (const seconds of durations) {
    if (typeof seconds === 'number' && Number.isFinite(seconds)) total += seconds;
    else unknown = true;
  }
  return { total, unknown };
}

export const PLAY_MODES = [
  ['sequential', 'In order (sequential)'],
  ['loop', 'Loop'],
  ['shuffle', 'Shuffle'],
  ['endless-shuffle', 'Endless shuffle'],
];

export function playModeLabel(mode) {
  const found = PLAY_MODES.find(([value]) => value === mode);
  return found ? found[1] : mode;
}
