// Moved to tests/support/servers.js; kept for the files that still import it from here
// (tests/redis/, tests/oidc-provider/).
export {
  type ApiServer,
  builtinFetch,
  startApi,
  startServer,
  startTokenEndpoint,
  type TestServer,
  type TokenEndpoint,
} from '../support/servers.js'
