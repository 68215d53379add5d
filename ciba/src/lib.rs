//! assent's CIBA provider: backchannel authentication, token, discovery and JWKS
//! endpoints. The clients it serves are already part of the configuration
//! (`ciba_clients`); the endpoints themselves arrive with the CIBA issue.
