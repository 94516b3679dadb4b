// Charts on a canvas: which chart a query result gets (a time or category column
// and a number), axis ticks, and the drawing of line, bar and sparkline charts.

import { Cell, Column } from './types'

export type ChartSpec =
  | { kind: 'line'; x: number; ys: number[] }
  | { kind: 'bar'; x: number; ys: number[] }

const NUMERIC = /^(U?Int|Float|Decimal)/
const TEMPORAL = /^(Timestamp|Date)/
const ISO_DATE = /^\d{4}-\d\d-\d\d([T ]\d\d(:\d\d(:\d\d(\.\d+)?)?)?)?(Z|[+-]\d\d:?\d\d)?$/

export function isNumeric(c: Column): boolean {
  return NUMERIC.test(c.type)
}

function isTime(c: Column, index: number, rows: Cell[][]): boolean {
  if (TEMPORAL.test(c.type)) return true
  if (!/Utf8|String/.test(c.type) || rows.length === 0) return false
  return rows.every((r) => r[index] === null || (typeof r[index] === 'string' && ISO_DATE.test(r[index] as string)))
}

/** The chart a result gets, or null when it has no time or category column and number. */
export function chooseChart(columns: Column[], rows: Cell[][]): ChartSpec | null {
  if (rows.length === 0) return null
  const ys = columns.map((c, i) => (isNumeric(c) ? i : -1)).filter((i) => i >= 0)
  const time = columns.findIndex((c, i) => isTime(c, i, rows))
  if (time >= 0 && ys.length > 0) return { kind: 'line', x: time, ys: ys.slice(0, 4) }
  const category = columns.findIndex((c) => !isNumeric(c))
  if (category >= 0 && ys.length > 0) return { kind: 'bar', x: category, ys: ys.slice(0, 1) }
  return null
}

/** About `count` round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!isFinite(min) || !isFinite(max)) return []
  if (max === min) {
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.5 : 1
    min -= pad
    max += pad
  }
  const raw = (max - min) / Math.max(1, count)
  const mag = Math.pow(10, Math.floor(Math.log10(raw)))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  const ticks: number[] = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

/** A number for an axis or a cell: 1.2k, 3.4M, at most three significant digits. */
export function compact(v: number): string {
  const a = Math.abs(v)
  if (a >= 1e9) return `${(v / 1e9).toPrecision(3).replace(/\.?0+$/, '')}G`
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3).replace(/\.?0+$/, '')}M`
  if (a >= 1e3) return `${(v / 1e3).toPrecision(3).replace(/\.?0+$/, '')}k`
  if (a === 0 || a >= 1) return String(Math.round(v * 100) / 100)
  return v.toPrecision(2)
}

export const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6']

function prepare(canvas: HTMLCanvasElement): { g: CanvasRenderingContext2D; w: number; h: number } | null {
  const ratio = window.devicePixelRatio || 1
  const w = canvas.clientWidth || canvas.width
  const h = canvas.clientHeight || canvas.height
  canvas.width = Math.round(w * ratio)
  canvas.height = Math.round(h * ratio)
  const g = canvas.getContext('2d')
  if (!g) return null
  g.setTransform(ratio, 0, 0, ratio, 0, 0)
  g.clearRect(0, 0, w, h)
  g.font = '11px system-ui, sans-serif'
  return { g, w, h }
}

function yAxis(g: CanvasRenderingContext2D, ticks: number[], y: (v: number) => number, left: number, right: number) {
  g.strokeStyle = '#e5e7eb'
  g.fillStyle = '#6b7280'
  g.textAlign = 'right'
  g.textBaseline = 'middle'
  for (const t of ticks) {
    g.beginPath()
    g.moveTo(left, y(t))
    g.lineTo(right, y(t))
    g.stroke()
    g.fillText(compact(t), left - 6, y(t))
  }
}

export interface Series {
  name: string
  points: [number, number][]
}

/** Lines over a time axis (x in ms since the epoch). */
export function drawLines(canvas: HTMLCanvasElement, series: Series[]): void {
  const p = prepare(canvas)
  if (!p) return
  const { g, w, h } = p
  const all = series.flatMap((s) => s.points)
  if (all.length === 0) return
  const [left, right, top, bottom] = [48, w - 12, 10, h - 22]
  const xs = all.map((q) => q[0])
  const x0 = Math.min(...xs)
  const x1 = Math.max(...xs)
  const ticks = niceTicks(Math.min(0, ...all.map((q) => q[1])), Math.max(...all.map((q) => q[1])), 4)
  const [v0, v1] = [ticks[0], ticks[ticks.length - 1]]
  const x = (t: number) => (x1 === x0 ? (left + right) / 2 : left + ((t - x0) / (x1 - x0)) * (right - left))
  const y = (v: number) => bottom - ((v - v0) / (v1 - v0 || 1)) * (bottom - top)
  yAxis(g, ticks, y, left, right)
  g.textAlign = 'center'
  g.textBaseline = 'top'
  for (const t of x1 === x0 ? [x0] : [x0, (x0 + x1) / 2, x1]) g.fillText(timeLabel(t, x1 - x0), x(t), bottom + 6)
  series.forEach((s, i) => {
    g.strokeStyle = PALETTE[i % PALETTE.length]
    g.lineWidth = 2
    g.beginPath()
    s.points.forEach(([t, v], j) => (j === 0 ? g.moveTo(x(t), y(v)) : g.lineTo(x(t), y(v))))
    if (s.points.length === 1) g.arc(x(s.points[0][0]), y(s.points[0][1]), 3, 0, 2 * Math.PI)
    g.stroke()
  })
}

function timeLabel(t: number, span: number): string {
  const iso = new Date(t).toISOString()
  return span > 2 * 86400e3 ? iso.slice(0, 10) : span > 3600e3 ? iso.slice(5, 16).replace('T', ' ') : iso.slice(11, 19)
}

/** Horizontal bars, one per category, longest first as given. */
export function drawBars(canvas: HTMLCanvasElement, labels: string[], values: number[]): void {
  const p = prepare(canvas)
  if (!p) return
  const { g, w, h } = p
  const n = Math.min(labels.length, Math.max(1, Math.floor((h - 20) / 18)))
  if (n === 0) return
  const labelWidth = Math.min(w * 0.35, Math.max(...labels.slice(0, n).map((l) => g.measureText(l).width)) + 12)
  const [left, right, top] = [labelWidth, w - 56, 6]
  const max = Math.max(0, ...values.slice(0, n))
  const row = Math.min(24, (h - top - 6) / n)
  for (let i = 0; i < n; i++) {
    const y = top + i * row
    const width = max > 0 ? (Math.max(0, values[i]) / max) * (right - left) : 0
    g.fillStyle = PALETTE[0]
    g.fillRect(left, y + 2, Math.max(1, width), row - 4)
    g.fillStyle = '#374151'
    g.textBaseline = 'middle'
    g.textAlign = 'right'
    g.fillText(labels[i].length > 40 ? labels[i].slice(0, 39) + '…' : labels[i], left - 6, y + row / 2)
    g.textAlign = 'left'
    g.fillText(compact(values[i]), left + width + 4, y + row / 2)
  }
}

/** The chart of `spec` for a result. */
export function drawResult(canvas: HTMLCanvasElement, spec: ChartSpec, columns: Column[], rows: Cell[][]): void {
  if (spec.kind === 'bar') {
    drawBars(
      canvas,
      rows.map((r) => String(r[spec.x] ?? '∅')),
      rows.map((r) => Number(r[spec.ys[0]] ?? 0)),
    )
    return
  }
  const t = (c: Cell) => (typeof c === 'number' ? c : Date.parse(String(c).replace(' ', 'T')))
  const series = spec.ys.map((yi) => ({
    name: columns[yi].name,
    points: rows
      .filter((r) => r[spec.x] !== null && r[yi] !== null)
      .map((r) => [t(r[spec.x]), Number(r[yi])] as [number, number])
      .filter((q) => isFinite(q[0]))
      .sort((a, b) => a[0] - b[0]),
  }))
  drawLines(canvas, series)
}
