// libsodium-wrappers ships no types. Its users type the few functions they call: the SDK in sodium.ts, the server in crypto/keys.ts.
declare module 'libsodium-wrappers' {
  const sodium: unknown;
  export default sodium;
}
