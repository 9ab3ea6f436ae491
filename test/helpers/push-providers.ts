/** The push providers' stand-ins (see push-pki.ts for what they are and how clients reach them). */
export * from './push-fake-apns.js';
export * from './push-fake-fcm.js';
export { type Responder } from './push-fake-shared.js';
export * from './push-pki.js';
