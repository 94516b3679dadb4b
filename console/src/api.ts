// Requests to pipe's API with the bearer token the login prompt keeps in this tab's
// session storage; a 401 raises `Unauthorized` so the page can ask for it.

import { SseMessage, SseParser } from './sse'

const TOKEN_KEY = 'pipe.console.token'

export class Unauthorized extends Error {
  constructor() {
    super('a token is required')
  }
}

/** A refusal with the API's own message (`{"error": …}`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY)
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value)
  else sessionStorage.removeItem(TOKEN_KEY)
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token()
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra
}

async function check(r: Response): Promise<Response> {
  if (r.status === 401) throw new Unauthorized()
  if (!r.ok) {
    const text = await r.text()
    let message = text
    try {
      message = JSON.parse(text).error ?? text
    } catch {
      // not JSON: the text itself
    }
    throw new ApiError(r.status, message || `HTTP ${r.status}`)
  }
  return r
}

export async function getJson<T>(path: string): Promise<T> {
  const r = await check(await fetch(path, { headers: headers(), cache: 'no-store' }))
  return r.json() as Promise<T>
}

export async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const r = await check(
    await fetch(path, {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
      signal,
    }),
  )
  return r.json() as Promise<T>
}

/** Server-sent events from `path`, read with fetch so the token can be sent. */
export async function* sse(path: string, signal: AbortSignal): AsyncGenerator<SseMessage> {
  const r = await check(await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), signal }))
  if (!r.body) return
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader()
  const parser = new SseParser()
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      for (const m of parser.push(value)) yield m
    }
  } finally {
    reader.releaseLock()
  }
}
