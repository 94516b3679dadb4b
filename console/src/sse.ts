// A parser of the server-sent events wire format (the WHATWG "event stream"), fed
// chunks as they arrive: lines split across chunks, CRLF or LF, multi-line data,
// comments (keep-alives) ignored.

export interface SseMessage {
  event: string
  data: string
}

export class SseParser {
  private buffer = ''
  private event = ''
  private data: string[] = []

  /** Feeds a chunk; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk
    const out: SseMessage[] = []
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/)
      if (nl < 0) break
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (this.buffer[nl] === '\r' && nl === this.buffer.length - 1) break
      const line = this.buffer.slice(0, nl)
      const width = this.buffer.startsWith('\r\n', nl) ? 2 : 1
      this.buffer = this.buffer.slice(nl + width)
      this.line(line, out)
    }
    return out
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push({ event: this.event || 'message', data: this.data.join('\n') })
      this.event = ''
      this.data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.event = value
    else if (field === 'data') this.data.push(value)
  }
}
