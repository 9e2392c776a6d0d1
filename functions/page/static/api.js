// The management API: the token, fetch and XHR helpers, and the contract's error shape.

export const TOKEN_KEY = 'smart-stream-token';

export const token = {
  get() {
    try {
      return localStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(value) {
    localStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    try {
      localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage unavailable: nothing kept anyway */
    }
  },
};

/** An API failure: `status` (0 for a network failure), `code` and `message` as the API sent. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

/** Called once per 401 that means our own token is refused (not Yoto's sign-in). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function networkError() {
  return new ApiError(0, 'network', 'Cannot reach the server (network error). Is it running? Try again.');
}

/** The error a failed answer carries: the JSON `message`, an S3 XML <Message>, or the status. */
export function errorFrom(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === 'string' && body.message) {
      return new ApiError(status, String(body.code || 'error'), body.message);
    }
  } catch {
    /* not JSON */
  }
  const xml = /<Message>([^<]*)<\/Message>/.exec(text || '');
  if (xml) return new ApiError(status, 'storage', xml[1]);
  return new ApiError(status, 'http', `The server answered ${status}.`);
}

function check(error) {
  // A Yoto sign-in that is needed is a 401 too (code yoto_*): it does not sign the page out.
  if (error.status === 401 && !String(error.code).startsWith('yoto')) unauthorized(error);
  return error;
}

/** `/api/audio/${name}/metadata` with each value encoded as one path segment. */
export function path(strings, ...values) {
  return strings.reduce(
    (out, part, i) => out + part + (i < values.length ? encodeURIComponent(values[i]) : ''),
    '',
  );
}

function withQuery(url, query) {
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${url}?${text}` : url;
}

/** One API call; resolves with the parsed JSON (null for 204), rejects with ApiError. */
export async function request(method, url, { json, query, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let response;
  let text;
  try {
    response = await fetch(withQuery(url, query), { method, headers, body, signal, cache: 'no-store' });
    text = await response.text();
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw networkError();
  }
  if (!response.ok) throw check(errorFrom(response.status, text));
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'bad_answer', 'The server sent an answer this page cannot read.');
  }
}

export const api = {
  get: (url, options) => request('GET', url, options),
  post: (url, options) => request('POST', url, options),
  del: (url, options) => request('DELETE', url, options),
};

/**
 * POST a FormData with XMLHttpRequest (fetch cannot report upload progress).
 * `auth`: send our bearer token (never to an upload URL, which may be another origin).
 * `onProgress(fraction | null)` as bytes go out. Resolves with {status, body}.
 */
export function sendForm(url, form, { auth = false, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    if (auth) {
      const bearer = token.get();
      if (bearer) xhr.setRequestHeader('Authorization', `Bearer ${bearer}`);
      xhr.setRequestHeader('Accept', 'application/json');
    }
    xhr.upload.addEventListener('progress', (event) => {
      if (onProgress) onProgress(event.lengthComputable ? event.loaded / event.total : null);
    });
    xhr.addEventListener('load', () => {
      const text = xhr.responseText;
      if (xhr.status >= 200 && xhr.status < 300) {
        let body = null;
        try {
          body = text ? JSON.parse(text) : null;
        } catch {
          body = null; // S3 may answer 204 or XML: nothing to read
        }
        resolve({ status: xhr.status, body });
      } else {
        const error = errorFrom(xhr.status, text);
        reject(auth ? check(error) : error);
      }
    });
    xhr.addEventListener('error', () => reject(networkError()));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'The upload was stopped.')));
    xhr.send(form);
  });
}
