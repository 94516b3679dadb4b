// The SQL view: read-only SQL over an archive written by an `object_store` sink,
// answered by `POST /api/v1/query`; results as a table, a chart when they have a time
// or category column and a number, and a CSV download.

import { ApiError, getJson, postJson, Unauthorized } from '../api'
import { chooseChart, drawResult } from '../chart'
import { toCsv } from '../csv'
import { clear, h } from '../dom'
import { Archive, Cell, QueryResult } from '../types'

const DEFAULT_SQL = 'SELECT service, count(*) AS events\nFROM logs\nGROUP BY 1\nORDER BY 2 DESC'

export function sqlView(onUnauthorized: () => void): HTMLElement & { onShow: () => void } {
  let result: QueryResult | null = null
  const archive = h('select', { id: 'sql-archive', 'aria-label': 'archive' })
  const text = h('textarea', { id: 'sql-text', spellcheck: 'false', rows: 6 }) as HTMLTextAreaElement
  text.value = sessionStorage.getItem('pipe.console.sql') ?? DEFAULT_SQL
  const run = h('button', { id: 'sql-run', class: 'primary' }, 'Run')
  const csv = h('button', { id: 'sql-csv', disabled: true }, 'Download CSV')
  const info = h('span', { id: 'sql-info', class: 'muted' })
  const error = h('pre', { id: 'sql-error', class: 'error', hidden: true })
  const chart = h('canvas', { id: 'sql-chart', class: 'result-chart', hidden: true })
  const table = h('div', { id: 'sql-result', class: 'result' })
  let pending: AbortController | null = null

  async function execute() {
    pending?.abort()
    const abort = new AbortController()
    pending = abort
    sessionStorage.setItem('pipe.console.sql', text.value)
    error.hidden = true
    info.textContent = 'running…'
    run.setAttribute('disabled', '')
    const started = performance.now()
    try {
      result = await postJson<QueryResult>('/api/v1/query', { sql: text.value, archive: archive.value || undefined }, abort.signal)
      show(result, performance.now() - started)
    } catch (e) {
      if (abort.signal.aborted) return
      if (e instanceof Unauthorized) return onUnauthorized()
      result = null
      clear(table)
      chart.hidden = true
      csv.setAttribute('disabled', '')
      info.textContent = e instanceof ApiError && e.status === 429 ? 'busy' : 'failed'
      error.textContent = (e as Error).message
      error.hidden = false
    } finally {
      if (pending === abort) pending = null
      run.removeAttribute('disabled')
    }
  }

  function show(r: QueryResult, ms: number) {
    info.textContent = `${r.rows.length.toLocaleString('en-US')} row${r.rows.length === 1 ? '' : 's'}${r.truncated ? ' (truncated: more rows matched)' : ''} in ${Math.round(ms)} ms`
    csv.toggleAttribute('disabled', false)
    clear(table)
    table.appendChild(
      h(
        'table',
        { class: 'grid' },
        h('thead', {}, h('tr', {}, ...r.columns.map((c) => h('th', { title: c.type }, c.name)))),
        h('tbody', {}, ...r.rows.map((row) => h('tr', {}, ...row.map(cell)))),
      ),
    )
    const spec = chooseChart(r.columns, r.rows)
    chart.hidden = !spec
    if (spec) drawResult(chart, spec, r.columns, r.rows)
  }

  run.addEventListener('click', () => void execute())
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault()
      void execute()
    }
  })
  csv.addEventListener('click', () => {
    if (!result) return
    const url = URL.createObjectURL(new Blob([toCsv(result.columns, result.rows)], { type: 'text/csv' }))
    const a = h('a', { href: url, download: 'query.csv' })
    document.body.appendChild(a)
    a.click()
    a.remove()
    URL.revokeObjectURL(url)
  })

  const root = h(
    'section',
    { class: 'view sql' },
    h('div', { class: 'toolbar' }, h('label', {}, 'Archive ', archive), run, csv, info, h('span', { class: 'muted hint' }, 'Ctrl+Enter runs · read-only')),
    text,
    error,
    chart,
    table,
  )
  let loaded = false
  return Object.assign(root, {
    onShow: () => {
      if (loaded) return
      loaded = true
      getJson<{ archives: Archive[] }>('/api/v1/archives')
        .then(({ archives }) => {
          clear(archive)
          if (archives.length === 0) archive.append(h('option', { value: '' }, 'no archive in this topology'))
          archive.append(...archives.map((a) => h('option', { value: a.id }, `${a.id} — ${a.url} (table ${a.table})`)))
        })
        .catch((e) => {
          loaded = false
          if (e instanceof Unauthorized) onUnauthorized()
        })
    },
  })
}

function cell(v: Cell): HTMLElement {
  if (v === null) return h('td', { class: 'null' }, 'null')
  return h('td', { class: typeof v === 'number' ? 'num' : undefined }, String(v))
}
