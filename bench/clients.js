// @ts-check
// The clients compared in the stampede and rollover sections: this package (with and without
// refresh-ahead), a naive "fetch a token per request" wrapper, the hand-written p-memoize + fetch
// wrapper people write themselves, and peers — @badgateway/oauth2-client's fetch wrapper,
// google-auth-library's OAuth2Client pointed at the loopback token endpoint, and axios with
// axios-auth-refresh. Every one talks to the same loopback token endpoint and API, with at most
// `connections` connections per origin, and is built cold (no token).
import { Agent as HttpAgent } from 'node:http'
import { OAuth2Client as BadgatewayClient, OAuth2Fetch } from '@badgateway/oauth2-client'
import axios from 'axios'
import { createAuthRefresh } from 'axios-auth-refresh'
import ExpiryMap from 'expiry-map'
import { OAuth2Client as GoogleClient } from 'google-auth-library'
import pMemoize from 'p-memoize'
import { Agent, request } from 'undici'
import { accessToken, clientCredentials } from 'undici-access-token'

/** The floor of the hot path: an interceptor that does nothing. */
export const passThrough = /** @type {import('undici').Dispatcher.DispatcherComposeInterceptor} */ (
  (dispatch) => (options, handler) => dispatch(options, handler)
)

export const clientId = 'bench-client'
export const clientSecret = 'bench-client-secret'
export const connections = 64
const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`

/**
 * @typedef {object} Client
 * @property {(path: string) => Promise<number>} get  the status the caller saw; 0 when it threw
 * @property {() => Promise<void>} close
 */

/**
 * @typedef {object} ClientKind
 * @property {string} name
 * @property {string} config  how it was configured, for the results table
 * @property {(origins: { idp: string, api: string }, lifetimeMs: number) => Client} create
 */

/** this package: `new Agent().compose(accessToken({ fetchToken: clientCredentials(...) }))`. */
function thisPackage(/** @type {boolean} */ refreshAhead) {
  return /** @type {ClientKind['create']} */ (
    (origins) => {
      const agent = new Agent({ connections })
      const dispatcher = agent.compose(
        accessToken({
          origins: origins.api,
          fetchToken: clientCredentials({
            tokenUrl: `${origins.idp}/token`,
            clientId,
            clientSecret,
            dispatcher: agent,
          }),
          ...(refreshAhead ? {} : { refreshAhead: false }),
        }),
      )
      return {
        async get(path) {
          try {
            const { statusCode, body } = await request(`${origins.api}${path}`, { dispatcher })
            await body.dump()
            return statusCode
          } catch {
            return 0
          }
        },
        close: () => agent.close(),
      }
    }
  )
}

/** POST client_credentials to the token endpoint with built-in fetch; the access token. */
async function fetchAccessToken(/** @type {string} */ idp) {
  const response = await fetch(`${idp}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  })
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}`)
  const json = /** @type {{ access_token: string }} */ (await response.json())
  return json.access_token
}

/** GET with built-in fetch and a bearer token; the status. */
async function fetchWithToken(/** @type {string} */ url, /** @type {string} */ token) {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  await response.arrayBuffer()
  return response.status
}

/** @type {ClientKind[]} */
export const kinds = [
  {
    name: 'undici-access-token',
    config:
      '`new Agent({ connections: 64 }).compose(accessToken({ origins, fetchToken: clientCredentials({ …, dispatcher: agent }) }))`, defaults (refresh-ahead 0.8, clock skew ≤ 10 % of the lifetime, one retry after a 401); `undici.request`',
    create: thisPackage(true),
  },
  {
    name: 'undici-access-token, refreshAhead: false',
    config:
      'as above with `refreshAhead: false`: a token is fetched when it stops being usable, and requests wait for it (blocking refresh)',
    create: thisPackage(false),
  },
  {
    name: 'naive: token per request',
    config: 'built-in `fetch` of a token, then built-in `fetch` of the API, for every request',
    create: (origins) => ({
      async get(path) {
        try {
          return await fetchWithToken(`${origins.api}${path}`, await fetchAccessToken(origins.idp))
        } catch {
          return 0
        }
      },
      close: async () => {},
    }),
  },
  {
    name: 'hand-written p-memoize + fetch',
    config:
      '`pMemoize(getToken, { cache: new ExpiryMap(0.9 × lifetime) })` (p-memoize 8, expiry-map 2) + built-in `fetch`; no 401 retry',
    create: (origins, lifetimeMs) => {
      const getToken = pMemoize(() => fetchAccessToken(origins.idp), {
        cache: new ExpiryMap(0.9 * lifetimeMs),
      })
      return {
        async get(path) {
          try {
            return await fetchWithToken(`${origins.api}${path}`, await getToken())
          } catch {
            return 0
          }
        },
        close: async () => {},
      }
    },
  },
  {
    name: '@badgateway/oauth2-client',
    config:
      '`new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials() })`, `client_secret_basic`; its `fetch()` (built-in fetch, a `Request` clone per call, refresh at `expiresAt`, one retry after a 401)',
    create: (origins) => {
      const client = new BadgatewayClient({
        server: `${origins.idp}/`,
        tokenEndpoint: '/token',
        clientId,
        clientSecret,
        authenticationMethod: 'client_secret_basic',
      })
      const wrapper = new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials() })
      return {
        async get(path) {
          try {
            const response = await wrapper.fetch(`${origins.api}${path}`)
            await response.arrayBuffer()
            return response.status
          } catch {
            return 0
          }
        },
        close: async () => {},
      }
    },
  },
  {
    name: 'google-auth-library',
    config:
      '`new OAuth2Client({ endpoints: { oauth2TokenUrl }, eagerRefreshThresholdMillis: lifetime / 10, forceRefreshOnFailure: true })` with a refresh token (grant `refresh_token` against the loopback endpoint); `client.request()` (gaxios → node-fetch, `http.Agent` keep-alive, 64 sockets)',
    create: (origins, lifetimeMs) => {
      const client = new GoogleClient({
        clientId,
        clientSecret,
        endpoints: { oauth2TokenUrl: `${origins.idp}/token` },
        eagerRefreshThresholdMillis: Math.max(1, lifetimeMs / 10),
        forceRefreshOnFailure: true,
      })
      client.setCredentials({ refresh_token: 'bench-refresh-token' })
      const agent = new HttpAgent({ keepAlive: true, maxSockets: connections })
      return {
        async get(path) {
          try {
            const response = await client.request({
              url: `${origins.api}${path}`,
              agent,
              responseType: 'text',
            })
            return response.status
          } catch (error) {
            return /** @type {{ response?: { status?: number } }} */ (error).response?.status ?? 0
          }
        },
        close: async () => agent.destroy(),
      }
    },
  },
  {
    name: 'axios + axios-auth-refresh',
    config:
      'axios 1 with a request interceptor that sets the last token, `createAuthRefresh(instance, refresh)` with its defaults (refresh on 401, `deduplicateRefresh: true`); `http.Agent` keep-alive, 64 sockets',
    create: axiosAuthRefresh(true),
  },
  {
    name: 'axios + axios-auth-refresh, deduplicateRefresh: false',
    config:
      'as above with `deduplicateRefresh: false`: a 401 that arrives while a refresh runs waits for it and is retried (the refresh call is still shared) instead of going to the caller',
    create: axiosAuthRefresh(false),
  },
]

/** axios + axios-auth-refresh: the token is set by a request interceptor and renewed after a 401. */
function axiosAuthRefresh(/** @type {boolean} */ deduplicateRefresh) {
  return /** @type {ClientKind['create']} */ (
    (origins) => {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: connections })
      const instance = axios.create({ baseURL: origins.api, httpAgent: agent })
      /** @type {string | undefined} */
      let token
      instance.interceptors.request.use((config) => {
        if (token !== undefined) config.headers.set('authorization', `Bearer ${token}`)
        return config
      })
      createAuthRefresh(
        // axios-auth-refresh's types name axios's CommonJS declarations; this is the ESM one.
        /** @type {any} */ (instance),
        async () => {
          // The global axios, not `instance`: the token request is never intercepted.
          const response = await axios.post(
            `${origins.idp}/token`,
            'grant_type=client_credentials',
            {
              headers: {
                authorization: basic,
                'content-type': 'application/x-www-form-urlencoded',
              },
              httpAgent: agent,
            },
          )
          token = response.data.access_token
        },
        { deduplicateRefresh },
      )
      return {
        async get(path) {
          try {
            const response = await instance.get(path, { responseType: 'text' })
            return response.status
          } catch (error) {
            return /** @type {{ response?: { status?: number } }} */ (error).response?.status ?? 0
          }
        },
        close: async () => agent.destroy(),
      }
    }
  )
}

/** @param {string} name */
export function kind(name) {
  const found = kinds.find((candidate) => candidate.name === name)
  if (found === undefined) throw new Error(`no client kind ${name}`)
  return found
}
