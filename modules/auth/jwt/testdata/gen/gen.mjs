// Generates test tokens and key sets with panva/jose (an implementation independent of the
// Go code under test). Outputs, written next to this directory and committed:
//   ../jose/jwks.json          public keys (RS*, PS*, ES256/384/512, EdDSA)
//   ../jose/jwks-rotated.json  the set after a key rotation (rsa-1 replaced by rsa-2)
//   ../jose/tokens.json        tokens with the verdict the gateway must reach
// Usage: npm ci && node gen.mjs   (Node >= 20). Times are fixed: unit tests use a fixed clock
// (NOW below); valid tokens expire in 2100 (FAR) and "not yet valid" starts in 2096, so
// integration tests with the real clock can use them too.
import { SignJWT, generateKeyPair, exportJWK, importJWK } from 'jose';
import { writeFileSync, mkdirSync } from 'node:fs';

const NOW = 1700000000;
const FAR = 4102444800; // 2100-01-01
const ISS = 'https://issuer.test';
const AUD = 'conduit-api';
const SECRET = 'jose-generated-hmac-secret-0123456789-abcdefghijklmnop'; // 54 bytes
const out = new URL('../jose/', import.meta.url);
mkdirSync(out, { recursive: true });

async function pair(alg, opts = {}) {
  return generateKeyPair(alg, { extractable: true, ...opts });
}

const keys = {
  'rsa-1': await pair('RS256', { modulusLength: 2048 }),
  'rsa-2': await pair('RS256', { modulusLength: 3072 }),
  'ec-256': await pair('ES256'),
  'ec-384': await pair('ES384'),
  'ec-521': await pair('ES512'),
  'ed-1': await pair('EdDSA', { crv: 'Ed25519' }),
  stranger: await pair('RS256', { modulusLength: 2048 }),
};

async function jwk(kid) {
  const j = await exportJWK(keys[kid].publicKey);
  return { ...j, kid, use: 'sig' };
}

const base = { sub: 'user-42', email: 'u42@example.test', roles: ['admin', 'editor'], tid: 'tenant-7' };

async function sign(alg, kid, key, over = {}) {
  const claims = { ...base, ...over.claims };
  let j = new SignJWT(claims).setProtectedHeader(kid ? { alg, kid, typ: 'JWT' } : { alg, typ: 'JWT' })
    .setIssuer(over.iss ?? ISS).setAudience(over.aud ?? AUD)
    .setIssuedAt(over.iat ?? NOW).setNotBefore(over.nbf ?? NOW).setExpirationTime(over.exp ?? FAR);
  return j.sign(key);
}

const hmac = new TextEncoder().encode(SECRET);
const tokens = [];
async function add(name, valid, alg, kid, key, over) {
  tokens.push({ name, valid, alg, kid: kid ?? '', token: await sign(alg, kid, key, over) });
}

// WebCrypto keys are bound to one algorithm: re-import the same RSA private key per alg.
const rsaPrivate = await exportJWK(keys['rsa-1'].privateKey);
for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']) {
  await add(`rsa-1 ${alg}`, true, alg, 'rsa-1', await importJWK(rsaPrivate, alg));
}
await add('ec-256 ES256', true, 'ES256', 'ec-256', keys['ec-256'].privateKey);
await add('ec-384 ES384', true, 'ES384', 'ec-384', keys['ec-384'].privateKey);
await add('ec-521 ES512', true, 'ES512', 'ec-521', keys['ec-521'].privateKey);
await add('ed-1 EdDSA', true, 'EdDSA', 'ed-1', keys['ed-1'].privateKey);
await add('rotated rsa-2 RS256', false, 'RS256', 'rsa-2', keys['rsa-2'].privateKey); // valid after rotation
await add('unknown kid', false, 'RS256', 'stranger', keys.stranger.privateKey);
await add('expired', false, 'RS256', 'rsa-1', keys['rsa-1'].privateKey, { iat: NOW - 7200, nbf: NOW - 7200, exp: NOW - 3600 });
await add('expired within leeway', true, 'RS256', 'rsa-1', keys['rsa-1'].privateKey, { iat: NOW - 3600, nbf: NOW - 3600, exp: NOW - 30 });
await add('not yet valid', false, 'RS256', 'rsa-1', keys['rsa-1'].privateKey, { nbf: 4000000000 });
await add('wrong issuer', false, 'RS256', 'rsa-1', keys['rsa-1'].privateKey, { iss: 'https://evil.test' });
await add('wrong audience', false, 'RS256', 'rsa-1', keys['rsa-1'].privateKey, { aud: 'another-api' });
await add('ES256 signed with the P-384 kid', false, 'ES256', 'ec-384', keys['ec-256'].privateKey);
for (const alg of ['HS256', 'HS384', 'HS512']) {
  await add(`secret ${alg}`, true, alg, undefined, hmac);
}

const jwks = { keys: await Promise.all(['rsa-1', 'ec-256', 'ec-384', 'ec-521', 'ed-1'].map(jwk)) };
const rotated = { keys: await Promise.all(['rsa-2', 'ec-256', 'ec-384', 'ec-521', 'ed-1'].map(jwk)) };
writeFileSync(new URL('jwks.json', out), JSON.stringify(jwks, null, 2) + '\n');
writeFileSync(new URL('jwks-rotated.json', out), JSON.stringify(rotated, null, 2) + '\n');
writeFileSync(new URL('tokens.json', out), JSON.stringify({
  generator: 'jose (panva) via modules/auth/jwt/testdata/gen/gen.mjs',
  now: NOW, issuer: ISS, audience: AUD, secret: SECRET, tokens,
}, null, 2) + '\n');
console.log(`wrote ${tokens.length} tokens and 2 key sets to ${out.pathname}`);
