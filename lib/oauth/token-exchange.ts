import { nameGrant } from '../diagnostics.js'
import type { FetchToken } from '../types.js'
import { type GrantOptions, type GrantValue, grantRequest, grantValue } from './grant.js'

/** Options of `tokenExchange()`: the OAuth 2.0 Token Exchange grant (RFC 8693). */
export interface TokenExchangeOptions extends GrantOptions {
  /** The token to exchange, or a function that gets it afresh for every token fetch. */
  subjectToken: GrantValue
  /** What `subjectToken` is, e.g. `urn:ietf:params:oauth:token-type:jwt` (RFC 8693 §3). */
  subjectTokenType: string
  /** A token of the party acting on the subject's behalf (delegation, RFC 8693 §1.1). */
  actorToken?: GrantValue
  /** What `actorToken` is; required with it (RFC 8693 §2.1). */
  actorTokenType?: string
  /** The type of token wanted, e.g. `urn:ietf:params:oauth:token-type:access_token`. */
  requestedTokenType?: string
}

const grantType = 'urn:ietf:params:oauth:grant-type:token-exchange'

/**
 * A `FetchToken` for token exchange (RFC 8693 §2.1): the subject (and actor) token,
 * got afresh on every fetch, exchanged at the token endpoint. The answer's
 * `issued_token_type` (§2.2.1) stays on the token under that name.
 *
 * `token_type` `N_A` (§2.2.1: the issued token is not an access token, e.g. an ID token
 * or a SAML assertion to hand on) is a valid answer and stays `tokenType: 'N_A'`: it is
 * never turned into `Bearer`, since sending as an access token what the server says is
 * none is a guess (openid-client, too, accepts `n_a` for this grant and leaves its use to
 * the caller). Use such a token through `TokenCache.get()`, or give `accessToken()` a
 * `headers()` that says how to send it.
 *
 * The subject and actor tokens are credentials: redacted from every error, like the
 * client's own.
 *
 * Client authentication is optional (RFC 8693 §2.1: the client "MAY" authenticate):
 * with no clientId, clientSecret or clientAuth the subject token alone authenticates,
 * as at Google's Security Token Service (workload identity federation).
 */
export function tokenExchange(options: TokenExchangeOptions): FetchToken {
  const send = grantRequest(options, { grantType, name: 'tokenExchange', clientOptional: true })
  const { subjectTokenType, actorTokenType, requestedTokenType } = options
  const subjectToken = grantValue(options.subjectToken, 'tokenExchange: subjectToken')
  checkType(subjectTokenType, 'subjectTokenType')
  let actorToken: ((signal: AbortSignal) => Promise<string>) | undefined
  if (options.actorToken !== undefined) {
    actorToken = grantValue(options.actorToken, 'tokenExchange: actorToken')
    checkType(actorTokenType, 'actorTokenType')
  } else if (actorTokenType !== undefined) {
    // RFC 8693 §2.1: actor_token_type "MUST NOT be included otherwise".
    throw new TypeError('tokenExchange: actorTokenType goes with an actorToken')
  }
  if (requestedTokenType !== undefined) checkType(requestedTokenType, 'requestedTokenType')

  return nameGrant(grantType, async (context) => {
    const { signal } = context
    const subject = await subjectToken(signal)
    const params: Array<[string, string]> = [
      ['subject_token', subject],
      ['subject_token_type', subjectTokenType],
    ]
    const secrets = [subject]
    if (actorToken !== undefined) {
      const actor = await actorToken(signal)
      params.push(['actor_token', actor], ['actor_token_type', actorTokenType as string])
      secrets.push(actor)
    }
    if (requestedTokenType !== undefined) {
      params.push(['requested_token_type', requestedTokenType])
    }
    return send(params, context, secrets)
  })
}

function checkType(value: unknown, name: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`tokenExchange needs ${name}: a token type URI (RFC 8693 §3)`)
  }
}
