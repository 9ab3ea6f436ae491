export type * from './history.js';
export type * from './messaging.js';
export type * from './threads.js';
