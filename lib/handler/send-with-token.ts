/*
 * The per-request decision of an `accessToken()` interceptor: a request with a usable
 * cached token and nothing to retry goes straight on, decorated, with no handler of ours
 * in between (the hot path: synchronous); every other one goes through an
 * AccessTokenHandler, which waits for the token and retries after a 401.
 */
import { AccessTokenHandler } from './access-token-handler.js'
import { refuse } from './controllers.js'
import { planReplay, type ReplayPlan } from './replay.js'
import { decorated, keyOf, type RequestPolicy } from './request-policy.js'
import type { Dispatch, DispatchOptions, Handler } from './types.js'

/**
 * Sends a request to a matched `origin` with a token: the cached one at once, or
 * the one being fetched once it arrives; and once more after a 401 that a new
 * token may cure. A request that cannot be sent safely is refused through its
 * handler, never thrown out of dispatch.
 */
export function sendWithToken(
  policy: RequestPolicy,
  dispatch: Dispatch,
  options: DispatchOptions,
  caller: Handler,
  origin: string,
): boolean {
  let key: string
  let plan: ReplayPlan
  try {
    key = keyOf(policy, options, origin)
    const retries =
      options.upgrade || options.method === 'CONNECT' ? undefined : policy.maxReplayBytes
    plan = planReplay(options.body, retries)
  } catch (error) {
    return refuse(caller, error)
  }
  const token = policy.internals.peek(key)
  // A DPoP-bound token goes through the handler even then: it learns each response's nonce.
  if (token !== undefined && plan.kind === 'none' && token.dpopThumbprint === undefined) {
    // Nothing to retry: no handler of ours in between.
    try {
      return dispatch(decorated(policy, options, token, origin), caller)
    } catch (error) {
      return refuse(caller, error)
    }
  }
  return new AccessTokenHandler(policy, dispatch, options, caller, origin, key, plan).start(token)
}
