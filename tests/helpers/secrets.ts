// Moved to tests/support/secrets.js; kept for the files that still import it from here
// (tests/oidc-provider/).
export { expectNoSecrets, renderings } from '../support/secrets.js'
