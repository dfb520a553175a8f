import {
  createNoopMeter,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import { AttributeBuilder } from './attributes.js'
import { recordMetrics } from './metrics.js'
import { scopeName } from './names.js'
import { recordSpans } from './spans.js'
import { Subscriptions } from './subscriptions.js'

/** The options of `instrument()`. */
export interface InstrumentOptions {
  /** Where the metrics go; default the global one (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider
  /** Where the spans go; default the global one (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider
  /**
   * Add each token's key (`undici_access_token.key`) to every metric and span; default false.
   * A key may name a tenant, and each key makes a series of its own.
   */
  includeKey?: boolean
}

/**
 * Turns this package's diagnostics channels into OpenTelemetry metrics and spans, for every
 * `accessToken()` and `TokenCache` in the process; returns what turns them off again. Call it
 * after the SDK has registered its providers, or pass them: a provider that is the API's
 * no-op when called gets no subscription at all, so the requests pay nothing for it.
 *
 * @example
 * import { instrument } from 'undici-access-token/otel'
 * const uninstrument = instrument() // after NodeSDK.start()
 */
export function instrument(options: InstrumentOptions = {}): () => void {
  const subscriptions = new Subscriptions()
  const attributes = new AttributeBuilder(options.includeKey === true)
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(scopeName)
  if (meter !== createNoopMeter()) recordMetrics(meter, attributes, subscriptions)
  const tracerProvider = options.tracerProvider ?? trace.getTracerProvider()
  if (!isUnregistered(tracerProvider)) {
    recordSpans(tracerProvider.getTracer(scopeName), attributes, subscriptions)
  }
  return () => subscriptions.close()
}

/** The API's global tracer provider while no SDK has registered one: it makes no spans. */
function isUnregistered(provider: TracerProvider): boolean {
  return (
    provider instanceof ProxyTracerProvider &&
    provider.getDelegate() === new ProxyTracerProvider().getDelegate()
  )
}
