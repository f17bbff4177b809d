// What the rest of the relay uses of auth/: other folders import it from here only.
export { Authenticator, AuthError, type Grants, tokenOf } from './authenticator.js'
export { type Expiry, expiryTimer } from './token-expiry.js'
