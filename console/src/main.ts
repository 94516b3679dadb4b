// The console's entry point: the header with its tabs (Topology, Tap, SQL, and Kafka
// when the topology has a kafka source), the login prompt when the API wants a
// token, and the switching between views (`#topology`, `#tap`, `#sql`, `#kafka`).

import { ApiError, getJson, setToken, token, Unauthorized } from './api'
import { clear, h } from './dom'
import { isKafkaSource } from './kafka'
import { Live } from './state'
import { kafkaView } from './views/kafka'
import { sqlView } from './views/sql'
import { tapView } from './views/tap'
import { healthSummary, topologyView } from './views/topology'

type View = HTMLElement & { onShow?: () => void; onHide?: () => void }

const app = document.getElementById('app') as HTMLElement

function login(message: string): void {
  clear(app)
  const input = h('input', { id: 'login-token', type: 'password', placeholder: 'token', autocomplete: 'current-password', required: true })
  const form = h(
    'form',
    { id: 'login', class: 'login' },
    h('h1', {}, 'pipe'),
    h('p', {}, message),
    input,
    h('button', { class: 'primary', type: 'submit' }, 'Sign in'),
    h('p', { class: 'muted' }, 'The token is [api].token (or --token) of this pipe. It is kept in this tab only.'),
  )
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    setToken(input.value)
    void start()
  })
  app.append(form)
  input.focus()
}

function unauthorized(): void {
  const had = token() !== null
  setToken(null)
  login(had ? 'That token was refused. Enter the API token of this pipe.' : 'This pipe asks for a token.')
}

async function start(): Promise<void> {
  const live = new Live()
  try {
    await live.start()
  } catch (e) {
    if (e instanceof Unauthorized) return unauthorized()
    clear(app)
    app.append(h('p', { class: 'error' }, `Cannot reach the API: ${(e as Error).message}`))
    return
  }
  const views: Record<string, { title: string; view: View }> = {
    topology: { title: 'Topology', view: topologyView(live) },
    tap: { title: 'Tap', view: tapView(live, unauthorized) },
  }
  // The SQL view needs the API's query endpoint; a pipe without it answers 404.
  const hasQuery = await getJson('/api/v1/archives').then(
    () => true,
    (e) => (e instanceof ApiError && e.status === 404 ? false : Promise.reject(e)),
  ).catch(() => false)
  if (hasQuery) views.sql = { title: 'SQL', view: sqlView(unauthorized) }
  if (live.topology.components.some(isKafkaSource)) views.kafka = { title: 'Kafka', view: kafkaView(live) }
  const summary = h('span', { id: 'summary', class: 'summary' })
  const nav = h('nav', {}, ...Object.entries(views).map(([k, v]) => h('a', { href: `#${k}`, 'data-view': k }, v.title)))
  const main = h('main', {})
  clear(app)
  app.append(h('header', {}, h('span', { class: 'brand' }, 'pipe'), nav, summary), main)
  let current: string | null = null
  const route = () => {
    const want = location.hash.slice(1)
    const name = want in views ? want : 'topology'
    if (name === current) return
    if (current) views[current].view.onHide?.()
    current = name
    nav.querySelectorAll('a').forEach((a) => a.classList.toggle('active', a.dataset.view === name))
    clear(main)
    main.append(views[name].view)
    views[name].view.onShow?.()
  }
  window.addEventListener('hashchange', route)
  route()
  live.onUpdate(() => {
    if (live.error instanceof Unauthorized) return unauthorized()
    const s = healthSummary(live.components)
    summary.textContent = ''
    summary.append(
      h('span', { class: 'pill ok' }, `${s.ok} ok`),
      s.degraded ? h('span', { class: 'pill degraded' }, `${s.degraded} degraded`) : '',
      s.failing ? h('span', { class: 'pill failing' }, `${s.failing} failing`) : '',
      h('span', { class: 'muted' }, live.error ? ` · API unreachable: ${(live.error as Error).message}` : ` · up ${uptime(live.uptime)}`),
    )
  })
  // The first poll happened before the views listened.
  void live.poll()
}

function uptime(s: number): string {
  if (s < 60) return `${Math.floor(s)} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`
}

void start()
