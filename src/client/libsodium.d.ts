// libsodium-wrappers ships no types; the SDK types the few functions it uses in sodium.ts.
declare module 'libsodium-wrappers' {
  const sodium: unknown;
  export default sodium;
}
