// Moved to tests/support/secret-registry.js; kept for the files that still import it from here
// (tests/oidc-provider/).
export { registeredSecrets, registerSecret } from '../support/secret-registry.js'
