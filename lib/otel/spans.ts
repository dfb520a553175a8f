import {
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import {
  addFetchScope,
  channels,
  type FetchTraceMessage,
  fetchTracing,
  summarize,
} from '../diagnostics.js'
import { type AttributeBuilder, errorAttributes, serverAttributes } from './attributes.js'
import { attributeNames, spanNames } from './names.js'
import type { Subscriptions } from './subscriptions.js'

/**
 * A span around each token fetch, the active span while it runs (so the token request's own
 * HTTP span is its child), and an event on the caller's active span when a 401 is swallowed
 * and the request sent again.
 */
export function recordSpans(tracer: Tracer, attributes: AttributeBuilder, on: Subscriptions): void {
  const open = new Map<FetchTraceMessage, Span>()
  on.on(fetchTracing.start, (message: FetchTraceMessage) => {
    const span = tracer.startSpan(
      spanNames.fetch,
      { kind: SpanKind.INTERNAL, attributes: attributes.ofFetch(message) },
      context.active(),
    )
    open.set(message, span)
  })
  on.add(
    addFetchScope((message, run) => {
      const span = open.get(message)
      return span === undefined ? run() : context.with(trace.setSpan(context.active(), span), run)
    }),
  )
  on.on(fetchTracing.asyncEnd, (message: FetchTraceMessage) => {
    const span = open.get(message)
    if (span === undefined) return // began before instrument()
    open.delete(message)
    if (message.error === undefined) {
      if (message.fingerprint !== undefined) {
        span.setAttribute(attributeNames.fingerprint, message.fingerprint)
      }
    } else {
      const { name, message: text } = summarize(message.error)
      span.setAttributes(errorAttributes(summarize(message.error), {}))
      span.recordException({ name, message: text })
      span.setStatus({ code: SpanStatusCode.ERROR, message: text })
    }
    span.end()
  })
  // Spans of fetches still running when uninstrumented end then, not never.
  on.add(() => {
    for (const span of open.values()) span.end()
    open.clear()
  })
  on.on(channels.retry, ({ key, origin, fingerprint }) => {
    // The request's handler publishes this in the caller's async context (see access-token-handler).
    const span = trace.getActiveSpan()
    if (span === undefined) return
    span.addEvent(
      spanNames.retry,
      attributes.of(key, serverAttributes(origin, { [attributeNames.fingerprint]: fingerprint })),
    )
  })
}
