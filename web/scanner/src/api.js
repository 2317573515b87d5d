// The public API as the gate page uses it: sign-in, one token refresh on a 401, and errors the page can tell
// apart (no connection, signed out, or an answer in the error format `{"error": {"code", "message"}}`).
const TOKENS_KEY = "trScanner.tokens";
// A gate cannot wait long: past this the page says "no connection" and staff try again.
const TIMEOUT_MS = 8000;

export class NetworkError extends Error {}
export class SignedOut extends Error {}
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, { body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: "no-store", signal: abort.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new NetworkError("no connection");
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data && typeof data.error === "object" && data.error ? data.error : {};
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

export function get(path) {
  return request("GET", path);
}

// Tokens live for this tab only (sessionStorage): closing the gate's browser signs it out.
export class Session {
  constructor(storage = sessionStorage) {
    this.storage = storage;
    try {
      this.tokens = JSON.parse(storage.getItem(TOKENS_KEY)) || null;
    } catch {
      this.tokens = null;
    }
  }

  get signedIn() {
    return Boolean(this.tokens && this.tokens.access_token);
  }

  save(tokens) {
    this.tokens = tokens;
    this.storage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  }

  clear() {
    this.tokens = null;
    this.storage.removeItem(TOKENS_KEY);
  }

  async signIn(email, password) {
    const t = await request("POST", "/auth/login", { body: { email, password } });
    this.save({ access_token: t.access_token, refresh_token: t.refresh_token });
  }

  async refresh() {
    if (!this.tokens || !this.tokens.refresh_token) return false;
    try {
      const t = await request("POST", "/auth/refresh", { body: { refresh_token: this.tokens.refresh_token } });
      this.save({ access_token: t.access_token, refresh_token: t.refresh_token || this.tokens.refresh_token });
      return true;
    } catch (err) {
      if (err instanceof NetworkError) throw err;
      return false;
    }
  }

  // A call with the access token; on a 401 one refresh and one retry, then SignedOut.
  async call(method, path, body) {
    if (!this.signedIn) throw new SignedOut("not signed in");
    try {
      return await request(method, path, { body, token: this.tokens.access_token });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
    }
    if (!(await this.refresh())) {
      this.clear();
      throw new SignedOut("session ended");
    }
    try {
      return await request(method, path, { body, token: this.tokens.access_token });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.clear();
        throw new SignedOut("session ended");
      }
      throw err;
    }
  }
}
