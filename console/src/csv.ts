// Query results as CSV (RFC 4180): a header row, fields quoted when they hold a
// comma, quote or line break, CRLF line ends.

import { Cell, Column } from './types'

function field(v: Cell): string {
  if (v === null || v === undefined) return ''
  const s = String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export function toCsv(columns: Column[], rows: Cell[][]): string {
  const lines = [columns.map((c) => field(c.name)).join(',')]
  for (const r of rows) lines.push(r.map(field).join(','))
  return lines.join('\r\n') + '\r\n'
}
