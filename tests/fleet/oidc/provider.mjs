// A real OpenID Connect provider (panva/oidc-provider, certified) on loopback for the SSO tests.
// Usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Its development login form accepts any e-mail as the login (it becomes sub and email,
// verified) and any password. Prints "listening" when ready.
import Provider from "oidc-provider";

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri],
    grant_types: ["authorization_code"], response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  scopes: ["openid", "email"],
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, email: id, email_verified: true }; } };
  },
  features: { devInteractions: { enabled: true } },
  // The e-mail claims in the ID token itself (as Google and Entra ID do), not only at userinfo.
  conformIdTokenClaims: false,
  cookies: { keys: ["test-only-cookie-key"] },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log("listening " + issuer));
